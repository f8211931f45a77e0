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


def plot_logit_lens(lens_logits: torch.Tensor, str_tokens: list[str], to_str, row_labels:
                    list[str], title: str = "logit lens"):
    """The logit lens of one prompt as a grid: a row per layer, a column per position, each cell
    the top next-token guess written in, shaded by its probability. lens_logits: (rows, pos,
    d_vocab); to_str turns a token id into its text (model.to_string)."""
    import matplotlib.pyplot as plt

    lens_logits = lens_logits.detach().float().cpu()
    rows, pos = lens_logits.shape[:2]
    if pos != len(str_tokens) or rows != len(row_labels):
        raise ValueError(f"lens_logits is {tuple(lens_logits.shape[:2])} (rows, pos) but there are "
                         f"{len(row_labels)} row labels and {len(str_tokens)} tokens")
    probs, top = lens_logits.softmax(-1).max(-1)
    fig, ax = plt.subplots(figsize=(1.0 * pos + 1.5, 0.45 * rows + 1.2))
    ax.imshow(probs, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for r in range(rows):
        for p in range(pos):
            ax.text(p, r, repr(to_str(int(top[r, p])))[1:-1], ha="center", va="center",
                    fontsize=7, color="white" if probs[r, p] > 0.6 else "black")
    ax.set_xticks(range(pos), [repr(t)[1:-1] for t in str_tokens], rotation=45, ha="right",
                  fontsize=8)
    ax.set_yticks(range(rows), row_labels, fontsize=8)
    ax.set(xlabel="input token (the guess is for the token after it)", title=title)
    fig.tight_layout()
    return fig


def plot_latent(summary, title: str | None = None):
    """An SAE latent's dashboard in one figure: its strongest contexts, the histogram of its
    non-zero activations, and the tokens its decoder direction promotes and suppresses.
    summary: a `sae.LatentSummary`."""
    import matplotlib.pyplot as plt

    fig, (ax_ctx, ax_hist, ax_tok) = plt.subplots(
        1, 3, figsize=(13, 3.2), gridspec_kw={"width_ratios": [1.6, 1, 1]})
    ax_ctx.axis("off")
    lines = [f"{act:5.2f}  ...{ctx!r}" for act, ctx in summary.top_contexts] or ["(never fires)"]
    ax_ctx.text(0, 1, "top contexts (the last token is where it fires)\n\n" + "\n".join(lines),
                va="top", family="monospace", fontsize=8, transform=ax_ctx.transAxes)
    active = summary.activations[summary.activations > 0].float().cpu()
    ax_hist.hist(active, bins=30)
    ax_hist.set(xlabel="activation (where non-zero)", ylabel="tokens",
                title=f"fires on {summary.fires:.1%} of tokens")
    tokens = summary.promoted[:6] + summary.suppressed[:6][::-1]
    ax_tok.barh(range(len(tokens)), [v for _, v in tokens],
                color=["tab:green"] * 6 + ["tab:red"] * (len(tokens) - 6))
    ax_tok.set_yticks(range(len(tokens)), [repr(t)[1:-1] for t, _ in tokens], fontsize=8)
    ax_tok.invert_yaxis()
    ax_tok.set(xlabel="direct logit effect", title="tokens it promotes / suppresses")
    labels = ", ".join(f"{name} {score:.2f}" for name, score in summary.best_labels)
    fig.suptitle(title or f"latent {summary.latent}   best world labels (AUROC): {labels}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def heatmap(ax, grid: torch.Tensor, xlabels=None, ylabels=None, title: str = "",
            cmap: str = "RdBu", vmin: float | None = None, vmax: float | None = None,
            fmt: str = "{:.2f}"):
    """A grid of numbers (rows, cols) drawn on `ax` with each value written in its cell. A
    diverging colour map ("RdBu") is centred on zero unless vmin and vmax are given. NaN cells
    (nothing measured there) are left blank."""
    grid = grid.detach().float().cpu()
    if vmax is None:
        vmax = float(grid.nan_to_num().abs().max()) or 1.0
    if vmin is None:
        vmin = -vmax if cmap == "RdBu" else 0.0
    ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    mid, span = (vmin + vmax) / 2, (vmax - vmin) / 2
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            v = float(grid[r, c])
            if math.isnan(v):
                continue
            strong = abs(v - mid) > 0.6 * span if cmap == "RdBu" else v > vmin + 1.2 * span
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="white" if strong else "black")
    rows, cols = grid.shape
    ax.set_xticks(range(cols), xlabels if xlabels is not None else range(cols), fontsize=8)
    ax.set_yticks(range(rows), ylabels if ylabels is not None else range(rows), fontsize=8)
    ax.set_title(title, fontsize=10)
    return ax


def node_label(model, transcoders, graph, node) -> str:
    """A node's short label: a latent by layer.index and the token its decoder direction raises
    most through the unembedding; an embedding by its token; the answer by its token."""
    from .lens import direction_logits

    kind = node[0]
    if kind == "embed":
        return repr(model.to_str_tokens(graph.tokens)[node[1]])
    if kind == "error":
        return f"err {node[1]}"
    if kind == "logit":
        return repr(model.to_string(node[1]))
    _, layer, _, latent = node
    writes = direction_logits(model, transcoders[layer].W_dec[latent].detach())
    return f"{layer}.{latent}\n{model.to_string(int(writes.argmax()))!r}"


def plot_attribution_graph(model, transcoders, graph, n_nodes: int = 16,
                           edge_share: float = 0.05, highlight=None):
    """An attribution graph (chapter 14) as a figure: positions across, MLP layers up, the
    embeddings at the bottom and the answer on top; the n_nodes most influential nodes (and the
    answer), sized by influence; edges between them larger than edge_share of the largest,
    their width the edge's size, blue adding and red taking away. highlight: a node to ring."""
    import matplotlib.pyplot as plt

    str_tokens = model.to_str_tokens(graph.tokens)
    n_layers, answer = model.cfg.n_layers, len(graph.nodes) - 1

    def cell(node):
        if node[0] == "embed":
            return node[1], -1.0
        if node[0] == "logit":
            return len(str_tokens) - 1, n_layers + 0.2
        return node[2], float(node[1])
    order = graph.influence.argsort(descending=True).tolist()
    shown = [i for i in order if i != answer][:n_nodes] + [answer]
    sharing: dict = {}  # nodes in one cell sit side by side, their labels staggered
    for i in shown:
        sharing.setdefault(cell(graph.nodes[i]), []).append(i)
    where = {i: (x + 0.8 * (k - (len(group) - 1) / 2) / len(group), y)
             for (x, y), group in sharing.items() for k, i in enumerate(group)}
    lift = {i: 8 + 16 * (k % 3) for group in sharing.values() for k, i in enumerate(group)}
    fig, ax = plt.subplots(figsize=(12, 6))
    weights = graph.adjacency[shown][:, shown]
    biggest = float(weights.abs().max()) or 1.0
    for a, t in enumerate(shown):
        for b, s in enumerate(shown):
            value = float(weights[a, b])
            if abs(value) > edge_share * biggest:
                (x0, y0), (x1, y1) = where[s], where[t]
                ax.plot([x0, x1], [y0, y1], color="tab:blue" if value > 0 else "tab:red",
                        lw=4 * abs(value) / biggest, alpha=0.6, zorder=1)
    for i in shown:
        x, y = where[i]
        ring = highlight is not None and graph.nodes[i] == tuple(highlight)
        ax.scatter([x], [y], s=60 + 600 * float(graph.influence[i]), color="white",
                   edgecolor="tab:orange" if ring else "black", linewidth=3 if ring else 1,
                   zorder=2)
        ax.annotate(node_label(model, transcoders, graph, graph.nodes[i]), (x, y), fontsize=7,
                    ha="center", va="bottom", xytext=(0, lift[i]), textcoords="offset points")
    ax.set_xticks(range(len(str_tokens)), [repr(t) for t in str_tokens])
    ax.set_yticks([-1, *range(n_layers), n_layers + 0.2],
                  ["embed", *[f"MLP {layer}" for layer in range(n_layers)], "answer"])
    ax.set_title(f"{model.to_string(graph.tokens[0])!r} -> "
                 f"{model.to_string(graph.answer)!r}: the {len(shown) - 1} most influential nodes")
    fig.tight_layout()
    return fig
