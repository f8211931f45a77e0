"""Attention views render offline by default, and say clearly when given the wrong shape."""

import matplotlib
import pytest
import torch

from mechinterp_course import viz

matplotlib.use("Agg")


def test_inline_view_needs_no_network(monkeypatch):
    pattern = torch.rand(2, 3, 3).tril()
    html = viz.attention_heads(["a", "b", "c"], pattern)._repr_html_()
    assert "CircuitsVis.render" in html and "unpkg.com" not in html  # the bundle is inlined
    monkeypatch.setattr(viz, "SOURCE", "cdn")
    assert "unpkg.com" in viz.attention_heads(["a", "b", "c"], pattern)._repr_html_()
    monkeypatch.setattr(viz, "SOURCE", "web")
    with pytest.raises(ValueError, match="inline"):
        viz.attention_heads(["a", "b", "c"], pattern)


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="pattern must be"):
        viz.attention_heads(["a", "b"], torch.rand(3, 3))


def test_static_grid_has_a_panel_per_head():
    fig = viz.plot_attention(torch.rand(5, 4, 4), ["a", "b", "c", "d"], cols=4)
    assert sum(ax.has_data() for ax in fig.axes) == 5
