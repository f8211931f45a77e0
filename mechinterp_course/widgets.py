"""ipywidgets explorers, each one line from a notebook: attention patterns, the logit lens, a
generation stepper with its KV cache, an SAE latent browser, and an attribution graph explorer.

Each view is drawn as a PNG into an `ipywidgets.Image`, so it shows the same in JupyterLab, Colab
and Binder, needs no JavaScript beyond ipywidgets' own, and can be checked without a browser
(tests change a control and read the image). Each explorer also has a `static()` figure, for
notebooks read on GitHub or run under nbval, where widgets do not render.
"""

from __future__ import annotations

import html
import io

import ipywidgets as w
import torch

from . import sae as sae_lib
from . import viz


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


class Explorer(w.VBox):
    """An explorer whose display also carries its current picture as a PNG: JupyterLab, Colab
    and Binder show the live widget, and whatever cannot run widgets (GitHub's viewer, a static
    site, nbconvert) shows the picture instead of "VBox(...)"."""

    image: w.Image

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None and getattr(self, "image", None) is not None and self.image.value:
            import base64
            bundle["image/png"] = base64.b64encode(self.image.value).decode()
        return bundle


class LatentBrowser(Explorer):
    """Browse an SAE's latents: type a latent's number, or pick a world label to jump to the
    latent that detects it best (by AUROC), and see its dashboard (`viz.plot_latent`)."""

    PICK = "(jump to the best latent for a label)"

    def __init__(self, model, sae, data, latents: torch.Tensor | None = None, start: int = 0,
                 labels: dict[str, torch.Tensor] | None = None):
        self.model, self.sae, self.data = model, sae, data
        with torch.no_grad():
            self.latents = sae.encode(data.acts) if latents is None else latents
        self.labels = data.token_labels() if labels is None else labels
        n = self.latents.shape[1]
        self.latent = w.BoundedIntText(value=start, min=0, max=n - 1, description="latent")
        self.by_label = w.Dropdown(options=[self.PICK, *self.labels], description="label",
                                   layout=w.Layout(width="340px"))
        self.image = w.Image(format="png")
        self.info = w.HTML()
        self.latent.observe(lambda _: self.show(), names="value")
        self.by_label.observe(self._jump, names="value")
        super().__init__([w.HBox([self.latent, self.by_label]), self.info, self.image])
        self.show()

    def summary(self) -> sae_lib.LatentSummary:
        return sae_lib.summarise_latent(self.model, self.sae, self.data, self.latents,
                                        self.latent.value, labels=self.labels)

    def static(self):
        """The current latent's dashboard as a matplotlib figure."""
        return viz.plot_latent(self.summary())

    def show(self):
        s = self.summary()
        best = ", ".join(f"{html.escape(name)} {score:.2f}" for name, score in s.best_labels)
        self.info.value = (f"<b>latent {s.latent}</b>: fires on {s.fires:.1%} of tokens; "
                           f"best world labels by AUROC: {best}")
        self.image.value = _png(viz.plot_latent(s))

    def _jump(self, change):
        if change["new"] == self.PICK:
            return
        from .neurons import auroc

        scores = auroc(self.latents, self.labels[change["new"]])
        self.latent.value = int(scores.argmax())  # redraws through the observer


class AttentionExplorer(Explorer):
    """Pick a prompt, a layer and a head; see the head's pattern over the tokens, with the head's
    scores on repeated random tokens (chapter 04) alongside."""

    def __init__(self, model, prompts: list[str] | str, layer: int = 0, head: int = 0,
                 scores: dict[str, torch.Tensor] | None = None):
        from . import circuits

        self.model = model
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        self.scores = circuits.head_scores(model) if scores is None else scores
        self.prompt = w.Dropdown(options=prompts, description="prompt",
                                 layout=w.Layout(width="480px"))
        self.layer = w.IntSlider(value=layer, min=0, max=model.cfg.n_layers - 1,
                                 description="layer")
        self.head = w.IntSlider(value=head, min=0, max=model.cfg.n_heads - 1, description="head")
        self.image = w.Image(format="png")
        self.info = w.HTML()
        for control in (self.prompt, self.layer, self.head):
            control.observe(lambda _: self.show(), names="value")
        super().__init__([self.prompt, w.HBox([self.layer, self.head]), self.info, self.image])
        self._patterns: dict[str, list[torch.Tensor]] = {}
        self.show()

    def pattern(self) -> torch.Tensor:
        """The chosen head's pattern on the chosen prompt, (query, key)."""
        text = self.prompt.value
        if text not in self._patterns:  # one forward pass a prompt, all layers
            with torch.no_grad():
                _, cache = self.model.run_with_cache(text, names=["pattern"])
            self._patterns[text] = [cache["pattern", layer][0].cpu()
                                    for layer in range(self.model.cfg.n_layers)]
        return self._patterns[text][self.layer.value][self.head.value]

    def static(self):
        tokens = self.model.to_str_tokens(self.prompt.value)
        return viz.plot_attention(self.pattern()[None], tokens,
                                  [f"L{self.layer.value}H{self.head.value}"], size=5.0)

    def show(self):
        layer, head = self.layer.value, self.head.value
        cells = "".join(f"<td>{html.escape(name)}: {float(v[layer, head]):.2f}</td>"
                        for name, v in self.scores.items())
        self.info.value = (f"<b>L{layer}H{head}</b> scores on repeated random tokens:"
                           f"<table><tr>{cells}</tr></table>")
        self.image.value = _png(self.static())


class LogitLensExplorer(Explorer):
    """Type a prompt; see the logit lens (the top guess at every layer and position) and, for
    one position, the top five guesses at each layer."""

    def __init__(self, model, prompt: str, position: int = -1, k: int = 5):
        self.model, self.k = model, k
        self.prompt = w.Text(value=prompt, description="prompt", continuous_update=False,
                             layout=w.Layout(width="480px"))
        self.position = w.IntSlider(description="position", min=0, max=1)
        self.image = w.Image(format="png")
        self.table = w.HTML()
        self.prompt.observe(lambda _: self._new_prompt(), names="value")
        self.position.observe(lambda _: self._show_table(), names="value")
        super().__init__([self.prompt, self.position, self.table, self.image])
        self._new_prompt(position)

    def _new_prompt(self, position: int = -1):
        from . import lens

        with torch.no_grad():
            _, cache = self.model.run_with_cache(self.prompt.value)
            self.lens_logits = lens.logit_lens(self.model, cache)[:, 0].cpu()  # (rows, pos, vocab)
        self.tokens = self.model.to_str_tokens(self.prompt.value)
        n = len(self.tokens)
        with self.position.hold_trait_notifications():
            self.position.max = n - 1
            self.position.value = position % n
        self._show_table()
        self.image.value = _png(self.static())

    def static(self):
        from . import lens

        return viz.plot_logit_lens(self.lens_logits, self.tokens, self.model.to_string,
                                   lens.lens_row_labels(self.model))

    def top(self, row: int) -> list[tuple[str, float]]:
        """The top-k guesses (text, probability) of lens row `row` at the chosen position."""
        probs = self.lens_logits[row, self.position.value].softmax(-1)
        top = probs.topk(self.k)
        return [(self.model.to_string(int(i)), float(p)) for p, i in zip(top.values, top.indices)]

    def _show_table(self):
        from . import lens

        rows = []
        for r, label in enumerate(lens.lens_row_labels(self.model)):
            guesses = " ".join(f"<code>{html.escape(repr(t))}</code> {p:.2f}"
                               for t, p in self.top(r))
            rows.append(f"<tr><td>{label}</td><td>{guesses}</td></tr>")
        token = html.escape(repr(self.tokens[self.position.value]))
        self.table.value = (f"<b>after {token}</b> (position {self.position.value})"
                            f"<table>{''.join(rows)}</table>")


class GenerationStepper(Explorer):
    """Generate greedily one token a click with chapter 02's hand-written KV cache; see the text,
    the cache growing (bytes per layer) and the next-token distribution."""

    def __init__(self, model, prompt: str, k: int = 10):
        self.model, self.k, self.prompt = model, k, prompt
        self.step_button = w.Button(description="next token")
        self.reset_button = w.Button(description="reset")
        self.text = w.HTML()
        self.image = w.Image(format="png")
        self.step_button.on_click(lambda _: self.step())
        self.reset_button.on_click(lambda _: self.reset())
        super().__init__([w.HBox([self.step_button, self.reset_button]), self.text, self.image])
        self.reset()

    def reset(self):
        from . import kvcache

        self.tokens = self.model.to_tokens(self.prompt)
        self.cache = kvcache.KVCache(self.model.cfg.n_layers)
        self.logits = kvcache.forward_with_cache(self.model, self.tokens, self.cache)[0, -1]
        self.show()

    def step(self):
        from . import kvcache

        next_token = self.logits.argmax().view(1, 1)
        self.tokens = torch.cat([self.tokens, next_token], dim=1)
        self.logits = kvcache.forward_with_cache(self.model, next_token, self.cache)[0, -1]
        self.show()

    def layer_bytes(self) -> list[int]:
        return [k.numel() * k.element_size() + v.numel() * v.element_size()
                for k, v in zip(self.cache.keys, self.cache.values)]

    def static(self):
        import matplotlib.pyplot as plt

        probs = self.logits.float().softmax(-1)
        top = probs.topk(self.k)
        fig, (ax_p, ax_c) = plt.subplots(1, 2, figsize=(10, 2.8),
                                         gridspec_kw={"width_ratios": [1.4, 1]})
        labels = [repr(self.model.to_string(int(i)))[1:-1] for i in top.indices]
        ax_p.barh(range(self.k), top.values.cpu(), color="tab:blue")
        ax_p.set_yticks(range(self.k), labels, fontsize=8)
        ax_p.invert_yaxis()
        ax_p.set(xlabel="probability", title="next token")
        ax_c.bar(range(self.model.cfg.n_layers), [b / 1024 for b in self.layer_bytes()])
        ax_c.set(xlabel="layer", ylabel="KiB", title=f"KV cache: {len(self.cache)} positions")
        fig.tight_layout()
        return fig

    def show(self):
        text = html.escape(self.model.to_string(self.tokens[0]))
        self.text.value = (f"<pre style='white-space: pre-wrap'>{text}</pre>"
                           f"cache {self.cache.nbytes():,} bytes for {len(self.cache)} positions")
        self.image.value = _png(self.static())


class GraphExplorer(Explorer):
    """Pick a prompt and how many nodes to show; see its attribution graph for the model's own
    answer (chapter 14), and pick a node to read: its influence, what it writes, and its
    strongest edges in and out."""

    def __init__(self, model, transcoders, prompts: list[str] | str, n_nodes: int = 16):
        self.model, self.transcoders = model, transcoders
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        self.prompt = w.Dropdown(options=prompts, description="prompt",
                                 layout=w.Layout(width="480px"))
        self.n_nodes = w.IntSlider(value=n_nodes, min=4, max=40, description="nodes")
        self.node = w.Dropdown(description="node", layout=w.Layout(width="480px"))
        self.image = w.Image(format="png")
        self.info = w.HTML()
        self._graphs: dict = {}
        self.prompt.observe(lambda _: self._new_graph(), names="value")
        self.n_nodes.observe(lambda _: self._new_graph(), names="value")
        self._quiet = False
        self.node.observe(lambda _: None if self._quiet else self.show(), names="value")
        super().__init__([self.prompt, self.n_nodes, self.node, self.info, self.image])
        self._new_graph()

    @property
    def graph(self):
        """The chosen prompt's graph, for the model's top next token (computed once a prompt)."""
        from . import attribution_graph

        text = self.prompt.value
        if text not in self._graphs:
            with torch.no_grad():
                answer = int(self.model(text)[0, -1].argmax())
            self._graphs[text] = attribution_graph.attribute(self.model, self.transcoders,
                                                             text, answer)
        return self._graphs[text]

    def _new_graph(self):
        g = self.graph
        order = [i for i in g.influence.argsort(descending=True).tolist()
                 if i != len(g.nodes) - 1][:self.n_nodes.value]
        options = [(f"{g.nodes[i]}  influence {float(g.influence[i]):.3f}", i) for i in order]
        self._quiet = True  # one drawing for the new options, not one per change
        self.node.options = options
        self.node.value = order[0]
        self._quiet = False
        self.show()

    def static(self):
        node = self.graph.nodes[self.node.value] if self.node.value is not None else None
        return viz.plot_attribution_graph(self.model, self.transcoders, self.graph,
                                          self.n_nodes.value, highlight=node)

    def describe(self, i: int, k: int = 3) -> str:
        """HTML: node i's influence, label, and its k strongest edges in and out."""
        g = self.graph
        label = html.escape(viz.node_label(self.model, self.transcoders, g, g.nodes[i]))

        def strongest(row):
            top = row.abs().topk(min(k, len(row))).indices.tolist()
            return ", ".join(f"{html.escape(str(g.nodes[j]))} {float(row[j]):+.2f}"
                             for j in top if float(row[j]) != 0) or "none"
        return (f"<b>{html.escape(str(g.nodes[i]))}</b> {label}: influence "
                f"{float(g.influence[i]):.3f}<br>strongest in: {strongest(g.adjacency[i])}"
                f"<br>strongest out: {strongest(g.adjacency[:, i])}")

    def show(self):
        if self.node.value is not None:
            self.info.value = self.describe(self.node.value)
        self.image.value = _png(self.static())


def attention_explorer(model, prompts, layer: int = 0, head: int = 0,
                       scores=None) -> AttentionExplorer:
    """An attention explorer (see `AttentionExplorer`)."""
    return AttentionExplorer(model, prompts, layer, head, scores)


def logit_lens_explorer(model, prompt: str, position: int = -1) -> LogitLensExplorer:
    """A logit lens explorer (see `LogitLensExplorer`)."""
    return LogitLensExplorer(model, prompt, position)


def generation_stepper(model, prompt: str) -> GenerationStepper:
    """A generation stepper (see `GenerationStepper`)."""
    return GenerationStepper(model, prompt)


def graph_explorer(model, transcoders, prompts, n_nodes: int = 16) -> GraphExplorer:
    """An attribution graph explorer (see `GraphExplorer`)."""
    return GraphExplorer(model, transcoders, prompts, n_nodes)


def latent_browser(model, sae, data, latents=None, start: int = 0, labels=None) -> LatentBrowser:
    """An SAE latent browser (see `LatentBrowser`). data: `neurons.collect(...)` at the SAE's
    site."""
    return LatentBrowser(model, sae, data, latents, start, labels)
