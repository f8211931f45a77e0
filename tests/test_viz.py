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


def test_each_chapter_inlines_circuitsvis_at_most_once():
    """Each inlined view carries circuitsvis's whole script (~1.3 MB): one view a chapter keeps a
    saved notebook small; more views belong in the static grids or the attention explorer."""
    from pathlib import Path

    sources = sorted((Path(__file__).resolve().parent.parent / "source").glob("*.py"))
    assert sources
    for src in sources:
        assert src.read_text().count("viz.attention_heads(") <= 1, src.name


def test_heatmap_writes_each_value_and_leaves_missing_cells_blank():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    viz.heatmap(ax, torch.tensor([[1.0, float("nan")], [-2.0, 0.5]]), fmt="{:.1f}")
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["-2.0", "0.5", "1.0"]
    assert ax.images[0].get_clim() == (-2.0, 2.0)  # the colour scale ignores the missing cell
    plt.close(fig)
