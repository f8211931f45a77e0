"""Plots a learner would rather look at than read: attention patterns, static and interactive.

Interactive views come from circuitsvis. Its default HTML fetches JavaScript from a CDN whenever it
can reach google.com from the *kernel*, which says nothing about whether the *browser* is online
(Binder behind a proxy, a workshop without Wi-Fi). We default to inlining circuitsvis's bundle
into the HTML, which always renders; set ``SOURCE = "cdn"`` for smaller notebooks when you know
the browser is online.
"""

from __future__ import annotations

import math

import torch

SOURCE = "inline"  # "inline" (always renders, ~1.3 MB per view) or "cdn" (small, needs internet)


class HTMLView:
    """Something Jupyter displays as HTML; str() gives the HTML too."""

    def __init__(self, html: str, description: str = "HTML view"):
        self.html, self.description = html, description

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:  # what plain-text front ends (and nbval) see
        return f"<{self.description}>"

    def __str__(self) -> str:
        return self.html


def attention_heads(str_tokens: list[str], pattern: torch.Tensor) -> HTMLView:
    """An interactive circuitsvis view of every head's pattern. pattern: (heads, q_pos, k_pos)."""
    import circuitsvis as cv

    if pattern.ndim != 3 or pattern.shape[1:] != (len(str_tokens), len(str_tokens)):
        raise ValueError(f"pattern must be (heads, {len(str_tokens)}, {len(str_tokens)}) for "
                         f"{len(str_tokens)} tokens, got {tuple(pattern.shape)}")
    if SOURCE not in ("inline", "cdn"):
        raise ValueError(f"viz.SOURCE must be 'inline' or 'cdn', got {SOURCE!r}")
    view = cv.attention.attention_patterns(tokens=list(str_tokens),
                                           attention=pattern.detach().float().cpu())
    return HTMLView(view.local_src if SOURCE == "inline" else view.cdn_src,
                    f"attention patterns: {pattern.shape[0]} heads, {len(str_tokens)} tokens")


def plot_attention(pattern: torch.Tensor, str_tokens: list[str], titles: list[str] | None = None,
                   cols: int = 4, size: float = 2.6):
    """A static grid of attention patterns, one panel a head. pattern: (heads, q_pos, k_pos)."""
    import matplotlib.pyplot as plt

    pattern = pattern.detach().float().cpu()
    heads = pattern.shape[0]
    cols = min(cols, heads)
    rows = math.ceil(heads / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    labels = [repr(t)[1:-1] for t in str_tokens]
    for i, ax in enumerate(axes.flat):
        if i >= heads:
            ax.axis("off")
            continue
        ax.imshow(pattern[i], cmap="Blues", vmin=0, vmax=1)
        ax.set_title(titles[i] if titles else f"head {i}", fontsize=9)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
    fig.supxlabel("key (attended to)", fontsize=9)
    fig.supylabel("query (attending)", fontsize=9)
    fig.tight_layout()
    return fig
