"""Attribution graphs on the local replacement model (Ameisen et al. 2025, "Circuit Tracing";
the method of Anthropic's circuit-tracer library), for one prompt of a GPT-2-style model with
one transcoder a layer.

The local replacement model is the model on this prompt with its nonlinearities other than the
transcoders frozen: attention patterns and the layer norms' scales are taken from the model's
own run, each MLP is replaced by its transcoder's active latents plus an error node (what the
transcoder misses here, a constant). What is left is linear in the latents' activations, so the
direct effect of one node on another is exact:

    edge(s -> t) = a_s * d(pre_t)/d(a_s)   with every other node held at its value,

where pre_t is a latent's pre-activation (or the answer's logit, less the mean logit) and a_s is
a latent's activation (for an error or an embedding node, its vector dotted with the gradient).
Influence sums the edges' normalised absolute weights over every path to the answer.

Shapes: a prompt is (1, pos); nodes are listed as ("feature", layer, pos, latent),
("error", layer, pos), ("embed", pos) and ("logit", token).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _sigma(x: Tensor, eps: float) -> Tensor:
    return (x.var(-1, keepdim=True, unbiased=False) + eps).sqrt()


def frozen_norm(x: Tensor, scale: Tensor, norm) -> Tensor:
    """A LayerNorm whose scale (the std it divides by) is frozen at `scale`, (1, pos, 1): linear
    in x."""
    return (x - x.mean(-1, keepdim=True)) / scale * norm.weight + norm.bias


class LocalReplacement:
    """The model frozen on one prompt: `forward(embed, features, errors)` is linear in its
    arguments and, at the prompt's own values, gives the model's logits."""

    def __init__(self, model, transcoders: dict, tokens: Tensor):
        if model.cfg.architecture != "gpt2":
            raise NotImplementedError(
                f"attribution graphs are written for GPT-2-style blocks (the course model); "
                f"{model.cfg.model_name} is {model.cfg.architecture!r}")
        if sorted(transcoders) != list(range(model.cfg.n_layers)):
            raise ValueError(f"need one transcoder for every layer 0..{model.cfg.n_layers - 1}, "
                             f"got layers {sorted(transcoders)}")
        tokens = model._as_tokens(tokens)
        if tokens.shape[0] != 1:
            raise ValueError(f"one prompt at a time: tokens are {tuple(tokens.shape)}")
        self.model, self.transcoders, self.tokens = model, transcoders, tokens
        n = model.cfg.n_layers
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        blocks = model.parts["blocks"]
        eps = blocks[0].ln_1.eps
        self.ln1_scale = [_sigma(cache["resid_pre", layer], eps) for layer in range(n)]
        self.ln2_scale = [_sigma(cache["resid_mid", layer], eps) for layer in range(n)]
        self.final_scale = _sigma(cache["resid_post", n - 1], eps)
        self.patterns = [cache["pattern", layer] for layer in range(n)]
        self.weights = [model.attention_weights(layer) for layer in range(n)]
        self.embed = cache["resid_pre", 0]  # token + position, (1, pos, d_model)
        with torch.no_grad():
            self.features = [transcoders[layer].encode(cache["ln2", layer]) for layer in range(n)]
            self.errors = [cache["mlp_out", layer] - transcoders[layer](cache["ln2", layer])[0]
                           for layer in range(n)]

    def forward(self, embed: Tensor, features: list[Tensor], errors: list[Tensor]):
        """(pre-activations of every latent per layer [(1, pos, d_tc)], logits (1, pos, d_vocab))
        with attention patterns and norm scales frozen."""
        m, x, pre = self.model, embed, []
        for layer, block in enumerate(m.parts["blocks"]):
            w, tc = self.weights[layer], self.transcoders[layer]
            ln1 = frozen_norm(x, self.ln1_scale[layer], block.ln_1)
            v = torch.einsum("bpd,hde->bphe", ln1, w["W_V"]) + w["b_V"]
            z = torch.einsum("bhqk,bkhe->bqhe", self.patterns[layer], v)
            x = x + torch.einsum("bqhe,hed->bqd", z, w["W_O"]) + w["b_O"]
            pre.append(tc.pre_acts(frozen_norm(x, self.ln2_scale[layer], block.ln_2)))
            x = x + features[layer] @ tc.W_dec + tc.b_dec + errors[layer]
        return pre, frozen_norm(x, self.final_scale, m.parts["ln_final"]) @ m.W_U + m.b_U


def logit_target(logits: Tensor, answer: int) -> Tensor:
    """The answer's logit at the last position less the mean logit there (what softmax sees of
    it, without the part that lifts every token)."""
    last = logits[0, -1]
    return last[answer] - last.mean()


@dataclass
class Graph:
    """One prompt's attribution graph."""

    tokens: Tensor              # (1, pos)
    answer: int                 # the token whose logit is the graph's target
    nodes: list[tuple]          # features, then errors, embeddings, and last the logit
    activations: Tensor         # (n_features,) the active latents' values
    adjacency: Tensor           # (n_nodes, n_nodes): [t, s] is the direct effect of s on t
    influence: Tensor           # (n_nodes,) each node's share of the paths into the logit

    @property
    def n_features(self) -> int:
        return len(self.activations)

    def top(self, k: int, kind: str = "feature") -> list[tuple]:
        """The k nodes of one kind with the most influence, most first."""
        idx = [i for i, node in enumerate(self.nodes) if node[0] == kind]
        order = sorted(idx, key=lambda i: -float(self.influence[i]))
        return [self.nodes[i] for i in order[:k]]


def attribute(model, transcoders: dict, tokens, answer: int,
              local: LocalReplacement | None = None) -> Graph:
    """The attribution graph of `tokens` (one prompt) for the logit of `answer` at its last
    position: every edge into every active latent and into the logit, by one batched backward
    pass through the local replacement model. local: that model, when already built for these
    tokens (it costs a forward pass)."""
    if local is None:
        local = LocalReplacement(model, transcoders, tokens)
    elif not torch.equal(local.tokens, model._as_tokens(tokens)) \
            or local.transcoders is not transcoders or local.model is not model:
        raise ValueError("`local` was built for another prompt, model or transcoders")
    n_layers, n_pos = model.cfg.n_layers, local.tokens.shape[1]
    index = [(local.features[layer][0] != 0).nonzero() for layer in range(n_layers)]  # (n, 2)
    features = [(layer, pos, latent) for layer in range(n_layers)
                for pos, latent in index[layer].tolist()]
    with torch.enable_grad():
        embed = local.embed.detach().clone().requires_grad_(True)
        acts = [f.detach().clone().requires_grad_(True) for f in local.features]
        errs = [e.detach().clone().requires_grad_(True) for e in local.errors]
        pre, logits = local.forward(embed, acts, errs)
        # one gather a layer: a select per latent would cost a full-size zero tensor per target
        # in the backward pass (quadratic; it was 95% of the time)
        targets = torch.cat([pre[layer][0, index[layer][:, 0], index[layer][:, 1]]
                             for layer in range(n_layers)]
                            + [logit_target(logits, answer)[None]])
        grads = torch.autograd.grad(targets, [embed, *acts, *errs], torch.eye(len(targets)),
                                    is_grads_batched=True)  # each (targets, 1, pos, ...)
    g_embed, g_acts, g_errs = grads[0], grads[1:1 + n_layers], grads[1 + n_layers:]
    values = torch.cat([local.features[layer][0, index[layer][:, 0], index[layer][:, 1]]
                        for layer in range(n_layers)])  # (n_features,)
    from_features = torch.cat([g_acts[layer][:, 0, index[layer][:, 0], index[layer][:, 1]]
                               for layer in range(n_layers)], 1) * values
    from_errors = torch.stack([g_errs[layer][:, 0, pos] @ local.errors[layer][0, pos]
                               for layer in range(n_layers) for pos in range(n_pos)], 1)
    from_embed = torch.stack([g_embed[:, 0, pos] @ local.embed[0, pos]
                              for pos in range(n_pos)], 1)
    nodes = ([("feature", *f) for f in features]
             + [("error", layer, pos) for layer in range(n_layers) for pos in range(n_pos)]
             + [("embed", pos) for pos in range(n_pos)] + [("logit", answer)])
    n_f, n = len(features), len(nodes)
    adjacency = torch.zeros(n, n)
    rows = list(range(n_f)) + [n - 1]  # the targets: features, and the logit
    adjacency[rows, :n - 1] = torch.cat([from_features, from_errors, from_embed], 1).detach()
    return Graph(local.tokens, answer, nodes, values.detach(), adjacency,
                 influence(adjacency, n - 1))


def influence(adjacency: Tensor, target: int) -> Tensor:
    """(n,): each node's influence on `target`, summed over all paths: with each node's incoming
    absolute edges normalised to sum to 1 (A), the target's row of A + A^2 + ... =
    (I - A)^-1 - I. The graph is acyclic (edges run forward), so the sum ends."""
    a = adjacency.abs()
    a = a / a.sum(1, keepdim=True).clamp(min=1e-12)
    eye = torch.eye(len(a))
    total = torch.linalg.solve(eye - a.T, eye[target])  # row `target` of (I - A)^-1
    total[target] -= 1
    return total


def prune(graph: Graph, share: float = 0.8) -> list[int]:
    """Indices of the fewest nodes (the logit always) whose influence adds up to `share` of
    the total: the nodes a drawing keeps."""
    if not 0 < share <= 1:
        raise ValueError(f"share must lie in (0, 1], got {share}")
    order = graph.influence.argsort(descending=True).tolist()
    total, kept, running = float(graph.influence.sum()), [], 0.0
    for i in order:
        if running >= share * total:
            break
        kept.append(i)
        running += float(graph.influence[i])
    logit = len(graph.nodes) - 1
    return kept if logit in kept else kept + [logit]


def intervene(model, transcoders: dict, tokens, edits: list[tuple[int, int, int, float]],
              errors: list[Tensor] | None = None) -> Tensor:
    """Logits (1, pos, d_vocab) of the model with every MLP replaced by its transcoder plus the
    prompt's own error node, and latents set by `edits` [(layer, pos, latent, value)]. Unlike
    the local replacement model nothing is frozen: attention and every later latent respond to
    the edit. With no edits it is the model."""
    from .transcoders import replacement_hooks

    tokens = model._as_tokens(tokens)
    if errors is None:
        errors = LocalReplacement(model, transcoders, tokens).errors
    with torch.no_grad(), model.hooks(replacement_hooks(transcoders, dict(enumerate(errors)),
                                                        edits)):
        return model(tokens)


# The swap's design, chosen on the first DEV_PAIRS pairs of interventions.capital_pairs and
# then run once on the rest: the k latents with the most influence in each prompt's graph,
# the other subject's switched on at `scale` times their own activation.
DEV_PAIRS = 20
SWAP = {"k": 30, "scale": 1.5}


@dataclass
class Swaps:
    """Subject swaps over prompt pairs (X, Y): did the answer become Y's?"""

    prompts: list[str]        # X's prompt
    wanted: list[int]         # Y's answer token
    got: list[int]            # the top token after the graph's swap
    moved: Tensor             # (n,) bool: the graph's swap made Y's answer the top token
    control_moved: Tensor     # (n,) bool: the matched control did

    def rate(self, which: str = "moved", start: int = 0) -> float:
        return float(getattr(self, which)[start:].float().mean())


def subject_swaps(model, transcoders: dict, k: int = SWAP["k"], scale: float = SWAP["scale"],
                  seed: int = 0, progress: bool = True, graphs: dict | None = None) -> Swaps:
    """For every pair (X, Y) of interventions.capital_pairs (same token length, so positions
    line up): switch off X's k most influential latents and switch on Y's k most influential
    (at scale times Y's activation), everything downstream recomputed (`intervene`), and see
    whether the answer becomes Y's capital. The control is matched: k latents of X's graph
    drawn at random switched off, and at Y's latents' places and values k latents drawn at
    random switched on. graphs: a dict to keep each prompt's graph in (and reuse from), for a
    second design on the same prompts."""
    from tqdm.auto import tqdm

    from .interventions import capital_pairs

    g = torch.Generator().manual_seed(seed)
    graphs = {} if graphs is None else graphs
    prompts, wanted, got, moved, control = [], [], [], [], []

    def graph_of(tokens, answer):
        key = tuple(tokens[0].tolist())
        if key not in graphs:
            local = LocalReplacement(model, transcoders, tokens)
            graphs[key] = (attribute(model, transcoders, tokens, answer, local), local)
        return graphs[key]
    groups = capital_pairs(model)
    total = sum(len(p) for p in groups)
    with tqdm(total=total, desc="subject swaps", disable=not progress, mininterval=1.0) as bar:
        for pairs in groups:
            for j in range(len(pairs)):
                x, y = pairs.clean[j:j + 1], pairs.corrupt[j:j + 1]
                gx, local_x = graph_of(x, int(pairs.answer[j]))
                gy, local_y = graph_of(y, int(pairs.wrong[j]))
                fy = local_y.features
                on = [(layer, pos, latent, scale * float(fy[layer][0, pos, latent]))
                      for _, layer, pos, latent in gy.top(k)]
                off = [(layer, pos, latent, 0.0) for _, layer, pos, latent in gx.top(k)]
                target = int(pairs.wrong[j])
                got.append(int(intervene(model, transcoders, x, off + on,
                                         local_x.errors)[0, -1].argmax()))
                moved.append(got[-1] == target)
                active = [node for node in gx.nodes if node[0] == "feature"]
                pick = torch.randperm(len(active), generator=g)[:k].tolist()
                d_tc = transcoders[0].W_dec.shape[0]
                c_off = [(active[i][1], active[i][2], active[i][3], 0.0) for i in pick]
                c_on = [(layer, pos, int(torch.randint(0, d_tc, (1,), generator=g)), value)
                        for layer, pos, _, value in on]
                control.append(int(intervene(model, transcoders, x, c_off + c_on,
                                             local_x.errors)[0, -1]
                                   .argmax()) == target)
                prompts.append(pairs.prompts[j].text)
                wanted.append(target)
                bar.update(1)
    return Swaps(prompts, wanted, got, torch.tensor(moved), torch.tensor(control))


def subject_labels(model, transcoders: dict, graph: Graph, k: int = 10, n_perm: int = 1000,
                   seed: int = 0) -> list[dict]:
    """What the world says each latent is about. For every capital prompt of the world, each
    latent's activation at its position counted from the end (the last token, the subject's
    last token, ...); against each of the world's subject labels (a US state, a country, a
    country of each continent), the AUROC; and a permutation p-value for the best label (the
    activations shuffled among the prompts n_perm times, the best label's AUROC taken each
    time, so picking the best label is paid for). The latents: the k most influential in
    `graph`, the graph of a capital prompt."""
    from . import world
    from .neurons import auroc

    prompts = world.capital_prompts()
    continents = sorted({p.attrs["continent"] for p in prompts if "continent" in p.attrs})
    names = ["a US state", "a country"] + [f"a country in {c}" for c in continents]
    labels = torch.tensor([[p.attrs["kind"] == "state", p.attrs["kind"] == "country"]
                           + [p.attrs.get("continent") == c for c in continents]
                           for p in prompts])  # (prompts, labels)
    latents = graph.top(k)
    from_end = {node: node[2] - graph.tokens.shape[1] for node in latents}  # -1: the last token
    layers = sorted({node[1] for node in latents})
    acts = torch.zeros(len(prompts), len(latents))
    with torch.no_grad():
        for i, p in enumerate(prompts):
            _, cache = model.run_with_cache(p.text, names=[("ln2", layer) for layer in layers])
            for j, (_, layer, _, latent) in enumerate(latents):
                x = cache["ln2", layer][0, from_end[latents[j]]]
                acts[i, j] = transcoders[layer].encode(x)[latent]
    g = torch.Generator().manual_seed(seed)
    out = []
    for j, node in enumerate(latents):
        observed = auroc(acts[:, j:j + 1], labels)[:, 0]  # (labels,)
        shuffled = torch.stack([acts[torch.randperm(len(prompts), generator=g), j]
                                for _ in range(n_perm)], 1)  # (prompts, n_perm)
        null = auroc(shuffled, labels).max(0).values  # the best label's AUROC, each shuffle
        best = int(observed.argmax())
        p_value = (1 + int((null >= observed[best]).sum())) / (1 + n_perm)
        out.append({"node": node, "label": names[best], "auroc": float(observed[best]),
                    "p": p_value, "fires_on": int((acts[:, j] > 0).sum()),
                    "prompts": len(prompts)})
    return out
