"""A TransformerLens-style view of a Hugging Face causal LM: named activations, a cache, and hooks.

Code written for TransformerLens (``cache["resid_post", 3]``, ``blocks.3.hook_resid_post``) runs on
any supported `transformers` model with only the loading line changed. We do not re-implement the
architectures: we wrap them.

How it works, in one paragraph. Activations that are outputs or inputs of a module (embeddings, the
residual stream between blocks, attention and MLP outputs, MLP neurons, norms) are reached with
ordinary PyTorch module hooks. The attention internals (q, k, v, scores, pattern, z) live inside one
function, so we register our own attention implementation with transformers (``mc_hooked``): the
same arithmetic as its eager attention, with a named hook point at every step. ``resid_mid`` is not
any module's output; it is ``resid_pre + attn_out``, so a hook on it is applied by adjusting
``attn_out`` so that the sum equals whatever the hook returned.

Shapes follow TransformerLens:
    resid_*, attn_out, mlp_out, embed, pos_embed, ln_final: (batch, pos, d_model)
    q, rot_q, z: (batch, pos, n_heads, d_head);  k, rot_k, v: (batch, pos, n_kv_heads, d_head)
        (q and k are the projections' outputs; Qwen3 normalises them before rotary, so its
        rot_q and rot_k are rotary(norm(q)) and rotary(norm(k)))
    attn_scores, pattern: (batch, n_heads, query_pos, key_pos)
    mlp_pre, mlp_post (and mlp_pre_linear for gated MLPs): (batch, pos, d_mlp)
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .memory import keep_freed_memory

ATTN_IMPLEMENTATION = "mc_hooked"

# short name -> full TransformerLens name ("{l}" is the layer)
LAYER_NAMES = {
    "resid_pre": "blocks.{l}.hook_resid_pre",
    "resid_mid": "blocks.{l}.hook_resid_mid",
    "resid_post": "blocks.{l}.hook_resid_post",
    "attn_out": "blocks.{l}.hook_attn_out",
    "mlp_out": "blocks.{l}.hook_mlp_out",
    "ln1": "blocks.{l}.ln1.hook_normalized",
    "ln2": "blocks.{l}.ln2.hook_normalized",
    "q": "blocks.{l}.attn.hook_q",
    "k": "blocks.{l}.attn.hook_k",
    "v": "blocks.{l}.attn.hook_v",
    "rot_q": "blocks.{l}.attn.hook_rot_q",
    "rot_k": "blocks.{l}.attn.hook_rot_k",
    "attn_scores": "blocks.{l}.attn.hook_attn_scores",
    "pattern": "blocks.{l}.attn.hook_pattern",
    "z": "blocks.{l}.attn.hook_z",
    "mlp_pre": "blocks.{l}.mlp.hook_pre",
    "mlp_pre_linear": "blocks.{l}.mlp.hook_pre_linear",
    "mlp_post": "blocks.{l}.mlp.hook_post",
}
GLOBAL_NAMES = {"embed": "hook_embed", "pos_embed": "hook_pos_embed",
                "ln_final": "ln_final.hook_normalized"}


@dataclass
class Config:
    """The numbers a learner needs about a model, named as in TransformerLens."""

    model_name: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    architecture: str          # "gpt2", "gptj", "llama", "neox", "opt" or "phi3"
    normalization_type: str    # "LN" or "RMS"
    positional_embedding_type: str  # "standard" or "rotary"
    act_fn: str
    device: str = "cpu"
    block_norms: str = "pre"   # "pre" (GPT-2, Llama), "sandwich" (Gemma 2, 3) or "post" (OLMo 2)


@dataclass
class HookPoint:
    """What a hook function receives as its second argument: where it is called from."""

    name: str
    layer: int | None = None


class ActivationCache(Mapping):
    """Activations from one forward pass, indexed by ``("resid_post", 3)`` or by full name."""

    def __init__(self, store: dict[str, Tensor], model: "HookedModel"):
        self._store = store
        self._model = model

    def __getitem__(self, key) -> Tensor:
        name = self._model.act_name(key)
        if name not in self._store:
            raise KeyError(f"{name!r} was not cached; cached names include "
                           f"{sorted(self._store)[:6]}... (pass names=None to cache everything)")
        return self._store[name]

    def __iter__(self):
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def stack(self, name: str) -> Tensor:
        """One per-layer activation stacked over layers: (n_layers, *shape)."""
        return torch.stack([self[name, layer] for layer in range(self._model.cfg.n_layers)])

    def to(self, device) -> "ActivationCache":
        return ActivationCache({k: v.to(device) for k, v in self._store.items()}, self._model)

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} activations)"


def hooked_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                     **kwargs):
    """Eager attention with hook points. query: (batch, n_heads, q_pos, d_head); key and value:
    (batch, n_kv_heads, k_pos, d_head), as transformers passes them (rotary already applied)."""
    owner = getattr(module, "_mc_owner", None)
    point = owner._point if owner is not None and owner._active else None
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    if point is not None:
        names = module._mc_names
        if names["q_in"] is not None:  # OPT's is hooked before it scales q
            query = point(names["q_in"], query.transpose(1, 2)).transpose(1, 2)
        key = point(names["k_in"], key.transpose(1, 2)).transpose(1, 2)
        value = point(names["v"], value.transpose(1, 2)).transpose(1, 2)
    n_rep = query.shape[1] // key.shape[1]  # grouped-query attention: kv heads are shared
    if n_rep > 1:
        key = key.repeat_interleave(n_rep, dim=1)
        value = value.repeat_interleave(n_rep, dim=1)
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling  # (b, h, q, k)
    softcap = kwargs.get("softcap")
    if softcap is not None:  # Gemma 2 caps its scores: attn_scores are the capped ones
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    if point is not None:
        scores = point(names["attn_scores"], scores)
    pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if point is not None:
        pattern = point(names["pattern"], pattern)
    pattern = torch.nn.functional.dropout(pattern, p=dropout, training=module.training)
    z = torch.matmul(pattern, value).transpose(1, 2)  # (b, q, h, d_head)
    if point is not None:
        z = point(names["z"], z)
    return z.contiguous(), pattern


def _register_attention():
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register(ATTN_IMPLEMENTATION, hooked_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTN_IMPLEMENTATION, eager_mask)


def _first(x):
    return x[0] if isinstance(x, tuple) else x


def _replace_first(x, new):
    return (new, *x[1:]) if isinstance(x, tuple) else new


class HookedModel(torch.nn.Module):
    """A transformers causal LM with TransformerLens names, a cache and hooks.

    ``model.hf`` is the wrapped transformers model, ``model.tokenizer`` its tokenizer.
    """

    def __init__(self, hf_model, tokenizer, name: str = "model", prepend_bos: bool | None = None):
        super().__init__()
        _register_attention()
        self.hf = hf_model
        self.tokenizer = tokenizer
        self.parts = _find_parts(hf_model)
        self.cfg = _make_config(hf_model, self.parts, name)
        self.cfg.device = _input_device(hf_model, self.parts["embed"])
        self._hook_fns: dict[str, list] = {}
        self._cache: dict[str, Tensor] | None = None
        self._cache_filter: Callable[[str], bool] | None = None
        self._active = False
        self._resid_pre: dict[int, Tensor] = {}
        self._missing: dict[str, str] = {}  # names this family lacks, and why
        self._cache_device: torch.device | None = None
        self._block_shape: tuple = ()
        if prepend_bos is None:  # GPT-2 style: as TransformerLens does; else as the tokenizer does
            bos = tokenizer.bos_token_id
            prepend_bos = bos is not None and (
                self.cfg.architecture == "gpt2" or tokenizer("a")["input_ids"][:1] == [bos])
        self.default_prepend_bos = prepend_bos
        hf_model.set_attn_implementation(ATTN_IMPLEMENTATION)
        self._install()

    # --- names ------------------------------------------------------------------------------

    def act_name(self, key) -> str:
        """Full TransformerLens name for ``("resid_post", 3)``, ``"embed"`` or a full name."""
        if isinstance(key, tuple):
            if len(key) != 2:
                raise KeyError(f"expected (name, layer), got {key!r}")
            short, layer = key
            if short not in LAYER_NAMES:
                raise KeyError(f"unknown activation {short!r}; per-layer names are "
                               f"{sorted(LAYER_NAMES)}")
            name = LAYER_NAMES[short].format(l=self.layer_index(layer, error=KeyError))
            if name in self._missing:
                raise KeyError(self._missing[name])
            return name
        if isinstance(key, str):
            if key in GLOBAL_NAMES:
                return GLOBAL_NAMES[key]
            if key in LAYER_NAMES:
                raise KeyError(f"{key!r} is per-layer: index it as ({key!r}, layer)")
            if key in self._name_set:
                return key
            if key in self._missing:
                raise KeyError(self._missing[key])
        raise KeyError(f"unknown activation {key!r}; use ('resid_post', 3), 'embed', or a full "
                       f"name such as 'blocks.0.hook_resid_post'")

    def layer_index(self, layer, error=ValueError) -> int:
        """A layer as a plain int in [0, n_layers): ints, numpy ints and one-element integer
        tensors are accepted, negative layers count from the end; bools are refused (True is not
        layer 1)."""
        if isinstance(layer, Tensor) and layer.numel() == 1 and not layer.is_floating_point() \
                and layer.dtype != torch.bool:
            layer = int(layer)
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
            raise error(f"layer must be an int, got {layer!r} ({type(layer).__name__})")
        n = self.cfg.n_layers
        if not -n <= layer < n:
            raise error(f"layer {int(layer)} is out of range: this model has {n} layers "
                        f"(0 to {n - 1})")
        return int(layer) % n

    @property
    def hook_names(self) -> list[str]:
        """Every full activation name this model offers."""
        return list(self._all_names)

    # --- hook machinery ---------------------------------------------------------------------

    def _point(self, name: str, x: Tensor) -> Tensor:
        for fn, hook in self._hook_fns.get(name, ()):
            out = fn(x, hook)
            if out is not None:
                if not isinstance(out, Tensor) or out.shape != x.shape:
                    raise ValueError(f"hook on {name} must return None or a tensor of shape "
                                     f"{tuple(x.shape)}, got {getattr(out, 'shape', type(out))}")
                if out.dtype != x.dtype:
                    raise ValueError(f"hook on {name} returned {out.dtype}; the activation is "
                                     f"{x.dtype}: return out.to(x.dtype) (a tensor built inside "
                                     f"the hook takes dtype=x.dtype)")
                x = out.to(x.device)  # a patch from a gathered cache goes back where x lives
        if self._cache is not None and self._cache_filter(name):
            self._cache[name] = x.detach().to(self._cache_device or x.device)
        return x

    def _wants(self, name: str) -> bool:
        return name in self._hook_fns or (self._cache is not None and self._cache_filter(name))

    def _install(self):
        """Attach the module hooks once; they return at once unless a cache or hook is active."""
        p, names = self.parts, []

        def out_hook(name, reshape=None, flat=False):
            names.append(name)

            def hook(module, args, output):
                if not self._active:
                    return None
                x = _first(output)
                if flat:  # OPT runs its MLP on (batch * pos, d): the hook sees (batch, pos, d)
                    new = self._point_flat(name, x, flat)
                elif reshape is not None:
                    new = self._point(name, x.view(*x.shape[:-1], *reshape)).reshape(x.shape)
                else:
                    new = self._point(name, x)
                return _replace_first(output, new)
            return hook

        def in_hook(name):
            names.append(name)

            def hook(module, args, kwargs):
                if not self._active:
                    return None
                if args:
                    return (self._point(name, args[0]), *args[1:]), kwargs
                return args, {**kwargs, "hidden_states": self._point(name, kwargs["hidden_states"])}
            return hook

        def norm_hook(norm, block, n):
            if block_part(p, block, norm) is None:
                why = ("its attention and MLP both read ln1's output" if p["arch"] == "gptj"
                       else f"its blocks normalise the sublayers' outputs, not their inputs "
                            f"(block_norms {self.cfg.block_norms!r})")  # OLMo 2
                self._missing[n[norm]] = f"{self.cfg.model_name} has no {norm}: {why}"
            else:
                block_part(p, block, norm).register_forward_hook(
                    out_hook(n[norm], flat=flat and norm == "ln2"))

        p["embed"].register_forward_hook(out_hook("hook_embed"))
        if p.get("pos_embed") is not None:
            p["pos_embed"].register_forward_hook(out_hook("hook_pos_embed"))
        c = self.cfg
        flat = c.architecture == "opt"
        for layer, block in enumerate(p["blocks"]):
            n = {k: v.format(l=layer) for k, v in LAYER_NAMES.items()}
            attn, mlp = block_part(p, block, "attn"), block_part(p, block, "mlp")
            block.register_forward_pre_hook(self._resid_pre_hook(layer, n, names), with_kwargs=True)
            norm_hook("ln1", block, n)
            rotary = c.positional_embedding_type == "rotary"
            h, kv, dh = c.n_heads, c.n_kv_heads, c.d_head
            if c.architecture == "neox":  # pre-rotary q and k: slices of [q | k | v] per head
                attn.query_key_value.register_forward_hook(self._fused_hook(
                    [n["q"], n["k"]], names,
                    lambda o: list(o.view(*o.shape[:-1], h, 3, dh).unbind(-2)),
                    lambda pieces, o: torch.stack(pieces, -2).reshape(o.shape)))
            elif c.architecture == "phi3":  # pre-rotary q and k: slices of [q | k | v]
                attn.qkv_proj.register_forward_hook(self._fused_hook(
                    [n["q"], n["k"]], names,
                    lambda o: [o[..., :h * dh].view(*o.shape[:-1], h, dh),
                               o[..., h * dh:(h + kv) * dh].view(*o.shape[:-1], kv, dh),
                               o[..., (h + kv) * dh:]],
                    lambda pieces, o: torch.cat([pieces[0].flatten(-2), pieces[1].flatten(-2),
                                                 pieces[2]], -1)))
            elif rotary:  # pre-rotary q and k are the projections' outputs
                attn.q_proj.register_forward_hook(out_hook(n["q"], (c.n_heads, c.d_head)))
                attn.k_proj.register_forward_hook(out_hook(n["k"], (c.n_kv_heads, c.d_head)))
            elif c.architecture == "opt":  # q before OPT scales it by 1/sqrt(d_head), as in TL
                attn.q_proj.register_forward_hook(out_hook(n["q"], (c.n_heads, c.d_head)))
            object.__setattr__(attn, "_mc_owner", self)  # a plain reference, not a child module
            attn._mc_names = {"q_in": None if c.architecture == "opt" else
                              n["rot_q" if rotary else "q"],
                              "k_in": n["rot_k" if rotary else "k"], **n}
            names += [attn._mc_names[k] for k in ("q_in", "k_in", "v", "attn_scores", "pattern",
                                                   "z") if attn._mc_names[k] is not None]
            block_part(p, block, "attn_out").register_forward_hook(
                self._attn_out_hook(layer, n, names))
            norm_hook("ln2", block, n)
            if c.architecture == "phi3":  # gate and up in one projection, [gate | up]
                mlp.gate_up_proj.register_forward_hook(self._fused_hook(
                    [n["mlp_pre"], n["mlp_pre_linear"]], names,
                    lambda o: list(o.chunk(2, -1)), lambda pieces, o: torch.cat(pieces, -1)))
            else:
                block_part(p, block, "mlp_in").register_forward_hook(
                    out_hook(n["mlp_pre"], flat=flat))
            if c.architecture == "llama":
                mlp.up_proj.register_forward_hook(out_hook(n["mlp_pre_linear"]))
            block_part(p, block, "mlp_down").register_forward_pre_hook(
                lambda m, args, name=n["mlp_post"]: (self._point_flat(name, args[0], flat),
                                                     *args[1:]) if self._active else None)
            names.append(n["mlp_post"])
            block_part(p, block, "mlp_out").register_forward_hook(
                out_hook(n["mlp_out"], flat=flat))
            block.register_forward_hook(out_hook(n["resid_post"]))
        p["ln_final"].register_forward_hook(out_hook("ln_final.hook_normalized"))
        order = {name: i for i, name in enumerate(names)}
        self._all_names = sorted(set(names), key=order.get)
        self._name_set = frozenset(self._all_names)

    def _point_flat(self, name: str, x: Tensor, flat: bool) -> Tensor:
        if not flat:
            return self._point(name, x)
        return self._point(name, x.view(*self._block_shape, x.shape[-1])).reshape(x.shape)

    def _fused_hook(self, point_names, names, split, join):
        """A hook on a fused projection (GPT-NeoX's and Phi-3's q/k/v, Phi-3's gate/up): split
        its output into pieces, the first ones named hook points; join them back only when a
        hook changed one, so that an unhooked run is untouched."""
        names += point_names

        def hook(module, args, output):
            if not self._active:
                return None
            pieces = split(output)
            new = [self._point(name, x) for name, x in zip(point_names, pieces)]
            if all(a is b for a, b in zip(new, pieces)):
                return None
            return join(new + pieces[len(new):], output)
        return hook

    def _resid_pre_hook(self, layer, n, names):
        names.append(n["resid_pre"])

        def hook(module, args, kwargs):
            if not self._active:
                return None
            x = args[0] if args else kwargs["hidden_states"]
            x = self._point(n["resid_pre"], x)
            self._block_shape = x.shape[:-1]  # (batch, pos), for OPT's flattened MLP
            if self._wants(n["resid_mid"]):
                self._resid_pre[layer] = x
            if args:
                return (x, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": x}
        return hook

    def _attn_out_hook(self, layer, n, names):
        names += [n["attn_out"], n["resid_mid"]]

        def hook(module, args, output):
            if not self._active:
                return None
            out = self._point(n["attn_out"], _first(output))
            if self._wants(n["resid_mid"]):
                resid_pre = self._resid_pre.pop(layer)
                mid = self._point(n["resid_mid"], resid_pre + out)
                if n["resid_mid"] in self._hook_fns:  # make resid_pre + attn_out equal the patch
                    out = mid - resid_pre
            return _replace_first(output, out)
        return hook

    # --- running ----------------------------------------------------------------------------

    def forward(self, input, attention_mask: Tensor | None = None) -> Tensor:
        """Logits (batch, pos, d_vocab) for text, a list of texts, or token ids."""
        tokens = self._as_tokens(input)
        if self.hf.config._attn_implementation != ATTN_IMPLEMENTATION:  # someone switched it
            self.hf.set_attn_implementation(ATTN_IMPLEMENTATION)
        self._active = bool(self._hook_fns) or self._cache is not None
        try:
            out = self.hf(input_ids=tokens, attention_mask=attention_mask, use_cache=False)
        finally:
            self._active = bool(self._hook_fns)
            self._resid_pre.clear()
        return out.logits

    def run_with_cache(self, input, names=None, attention_mask: Tensor | None = None,
                       device=None):
        """Run the model and return (logits, cache). ``names``: None for every activation, a list
        of names (``"resid_post"`` means every layer's), or a function of the full name.
        ``device``: where the cache keeps its activations; by default where each was made, and
        for a model spread over devices (``device_map``) where the tokens go in.

        On Linux, the first call tells malloc to keep freed memory for reuse, which makes a full
        cache nearly free (see `mechinterp_course.memory`)."""
        from .planner import warn_if_too_big  # the same arithmetic as planner.plan

        keep_freed_memory()
        tokens = self._as_tokens(input)
        wanted = self._make_filter(names)
        spread = len(set(getattr(self.hf, "hf_device_map", {}).values())) > 1
        cache_device = torch.device(device) if device is not None else (
            torch.device(self.cfg.device) if spread else None)
        warn_if_too_big(self, [n for n in self._all_names if wanted(n)], *tokens.shape,
                        cache_device or self.cfg.device)
        self._cache, self._cache_filter, self._cache_device = {}, wanted, cache_device
        try:
            logits = self.forward(tokens, attention_mask=attention_mask)
            store = self._cache
        finally:
            self._cache, self._cache_filter, self._cache_device = None, None, None
        return logits, ActivationCache(store, self)

    def _make_filter(self, names) -> Callable[[str], bool]:
        if names is None:
            return lambda name: True
        if callable(names):
            return names
        if isinstance(names, (str, tuple)):
            names = [names]
        wanted = set()
        for key in names:
            if isinstance(key, str) and key in LAYER_NAMES:
                wanted |= {LAYER_NAMES[key].format(l=i) for i in range(self.cfg.n_layers)}
            else:
                wanted.add(self.act_name(key))
        return wanted.__contains__

    @contextlib.contextmanager
    def hooks(self, fwd_hooks):
        """Temporarily run hook functions on named activations.

        ``fwd_hooks``: a dict ``{("mlp_out", 2): fn}`` or a list of ``(name, fn)`` pairs. Each
        ``fn(activation, hook)`` (or ``fn(activation)``) returns a replacement tensor, or None after
        editing the activation in place.
        """
        items = list(fwd_hooks.items() if isinstance(fwd_hooks, Mapping) else fwd_hooks)
        entries = []  # every name and function is checked before any hook is installed
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(f"hooks take a dict {{name: fn}} or a list of (name, fn) pairs, "
                                f"got the item {item!r}")
            key, fn = item
            name = self.act_name(key)
            if not callable(fn):
                raise TypeError(f"the hook for {key!r} must be a function, got {fn!r}")
            entries.append((name, (_two_arg(fn), HookPoint(name, _layer_of(name)))))
        added = []
        for name, entry in entries:
            self._hook_fns.setdefault(name, []).append(entry)
            added.append((name, entry))
        self._active = bool(self._hook_fns)
        try:
            yield self
        finally:
            for name, entry in added:
                self._hook_fns[name].remove(entry)
                if not self._hook_fns[name]:
                    del self._hook_fns[name]
            self._active = bool(self._hook_fns)

    def run_with_hooks(self, input, fwd_hooks):
        """TransformerLens-style: logits of one forward pass with ``fwd_hooks`` applied."""
        with self.hooks(fwd_hooks):
            return self.forward(input)

    @torch.no_grad()
    def generate(self, input, max_new_tokens: int = 20, temperature: float = 0.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 prepend_bos: bool | None = None, stop_at_eos: bool = True, **kwargs):
        """Continue a prompt with transformers' cached generation. Text in, text out (prompt
        included); a list of texts gives a list of texts; token ids in, token ids out.
        temperature 0 means greedy. With stop_at_eos, a row stops after its end-of-text token.

        Prompts of different lengths are padded on the *left* under an attention mask, so each
        continues exactly as it would alone (right padding would make the model continue after a
        run of padding tokens)."""
        _check_sampling(max_new_tokens, temperature, top_k, top_p)
        texts = [input] if isinstance(input, str) else list(input) if isinstance(
            input, (list, tuple)) else None
        if texts is not None:
            rows = [self.to_tokens(t, prepend_bos=prepend_bos)[0] for t in texts]
            width = max(len(r) for r in rows)
            tokens = torch.full((len(rows), width), self._pad_id(), dtype=torch.long,
                                device=self.cfg.device)
            mask = torch.zeros_like(tokens)
            for i, r in enumerate(rows):
                tokens[i, width - len(r):], mask[i, width - len(r):] = r, 1
        else:
            tokens = self._as_tokens(input)
            mask = kwargs.pop("attention_mask", None)
            mask = torch.ones_like(tokens) if mask is None else mask.to(tokens.device)
        self._check_length(tokens.shape[1] + max_new_tokens, "the prompt plus max_new_tokens",
                           "lower max_new_tokens or shorten the prompt")
        if seed is not None:
            torch.manual_seed(seed)
        sample = temperature > 0
        out = self.hf.generate(
            tokens, attention_mask=mask, max_new_tokens=max_new_tokens,
            do_sample=sample, temperature=temperature if sample else None,
            top_k=top_k if sample else None, top_p=top_p if sample else None,
            pad_token_id=self._pad_id(), **({} if stop_at_eos else {"eos_token_id": None}),
            **kwargs)
        if texts is None:
            return out
        skip = 1 if self._prepend(prepend_bos) else 0
        eos = self.tokenizer.eos_token_id
        decoded = []
        for i, r in enumerate(rows):
            new = out[i, width:].tolist()
            if stop_at_eos and eos in new:  # finished rows are padded after their EOS
                new = new[: new.index(eos) + 1]
            decoded.append(self.tokenizer.decode(r[skip:].tolist() + new))
        return decoded[0] if isinstance(input, str) else decoded

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        return pad

    # --- tokens -----------------------------------------------------------------------------

    def _prepend(self, prepend_bos: bool | None) -> bool:
        return self.default_prepend_bos if prepend_bos is None else prepend_bos

    def to_tokens(self, text: str | list[str], prepend_bos: bool | None = None) -> Tensor:
        """Token ids (batch, pos) on the model's device; BOS first where the model has one.
        A list of texts is padded on the right."""
        texts = [text] if isinstance(text, str) else list(text) if isinstance(
            text, (list, tuple)) else None
        if not texts or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"to_tokens takes a string or a non-empty list of strings, got "
                            f"{text!r:.60}")
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        if self._prepend(prepend_bos):
            ids = [[self.tokenizer.bos_token_id] + x for x in ids]
        pad, width = self._pad_id(), max(len(x) for x in ids)
        rows = [x + [pad] * (width - len(x)) for x in ids]
        return torch.tensor(rows, dtype=torch.long, device=self.cfg.device)

    def to_str_tokens(self, input, prepend_bos: bool | None = None) -> list[str]:
        """The tokens of one text (or one row of ids) as strings, e.g. ['<|endoftext|>', 'The']."""
        if isinstance(input, str):
            input = self.to_tokens(input, prepend_bos=prepend_bos)
        ids = torch.as_tensor(input)
        if ids.ndim == 2:
            if ids.shape[0] != 1:
                raise ValueError("to_str_tokens takes one sequence; index the batch first")
            ids = ids[0]
        return [self.tokenizer.decode([int(i)]) for i in ids]

    def to_string(self, tokens) -> str | list[str]:
        tokens = torch.as_tensor(tokens)
        if tokens.ndim == 2:
            return [self.tokenizer.decode(row) for row in tokens]
        return self.tokenizer.decode(tokens)

    def to_single_token(self, text: str) -> int:
        """The id of a string that is exactly one token, such as ' Austin'."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"{text!r} is {len(ids)} tokens for this tokenizer "
                             f"({[self.tokenizer.decode([i]) for i in ids]}), not one")
        return ids[0]

    def _as_tokens(self, input, prepend_bos: bool | None = None) -> Tensor:
        if isinstance(input, (str, list, tuple)):
            input = self.to_tokens(list(input) if isinstance(input, tuple) else input,
                                   prepend_bos=prepend_bos)
        if not isinstance(input, Tensor):
            raise TypeError(f"expected text, a list of texts or token ids, got {type(input)}")
        if input.is_floating_point() or input.is_complex():
            raise TypeError("expected integer token ids, got a float tensor; to run on "
                            "embeddings call model.hf(inputs_embeds=...)")
        if input.dtype == torch.bool:
            raise TypeError("expected integer token ids, got a bool tensor (a mask?); token "
                            "ids come from model.to_tokens(text)")
        if input.ndim == 1:
            input = input[None]
        if input.ndim != 2:
            raise ValueError(f"token ids must be (batch, pos), got shape {tuple(input.shape)}")
        if input.shape[0] == 0 or input.shape[1] == 0:
            raise ValueError(f"no tokens to run (shape {tuple(input.shape)}): give at least one "
                             f"token per row")
        self._check_length(input.shape[1])
        if input.min() < 0 or input.max() >= self.cfg.d_vocab:
            raise ValueError(f"token ids must lie in [0, {self.cfg.d_vocab})")
        return input.long().to(self.cfg.device)

    def _check_length(self, n_tokens: int, what: str = "the input", fix: str | None = None):
        """Learned position tables end at n_ctx: past it the lookup fails with an IndexError."""
        n_ctx = self.cfg.n_ctx
        if self.cfg.positional_embedding_type == "standard" and n_tokens > n_ctx:
            fix = fix or f"shorten it (tokens[:, -{n_ctx}:] keeps the last {n_ctx})"
            raise ValueError(f"{what} is {n_tokens} tokens, longer than this model's context "
                             f"of {n_ctx}: {fix}")

    # --- weights ----------------------------------------------------------------------------

    @property
    def W_E(self) -> Tensor:
        """Token embedding (d_vocab, d_model): row t is what token t puts into the residual
        stream, scale included (Gemma multiplies its table by sqrt(d_model))."""
        embed = self.parts["embed"]
        scale = getattr(embed, "embed_scale", None)
        return embed.weight if scale is None else embed.weight * scale.to(embed.weight.dtype)

    @property
    def W_pos(self) -> Tensor:
        """Learned position embedding (n_ctx, d_model): row i is what position i adds (OPT's
        table starts two rows early, an offset it adds to every position); rotary models have
        none."""
        pos_embed = self.parts.get("pos_embed")
        if pos_embed is None:
            raise AttributeError("this model has rotary position embeddings, no W_pos")
        return pos_embed.weight[getattr(pos_embed, "offset", 0):]

    @property
    def W_U(self) -> Tensor:
        """Unembedding (d_model, d_vocab)."""
        return self.hf.get_output_embeddings().weight.T

    @property
    def b_U(self) -> Tensor:
        bias = self.hf.get_output_embeddings().bias
        return bias if bias is not None else torch.zeros(self.cfg.d_vocab, device=self.W_U.device)

    def attention_weights(self, layer: int) -> dict[str, Tensor]:
        """One layer's attention weights split per head, TransformerLens layout:
        W_Q (n_heads, d_model, d_head), W_K and W_V (n_kv_heads, d_model, d_head),
        W_O (n_heads, d_head, d_model), and biases b_Q, b_K, b_V (heads, d_head), b_O (d_model)."""
        return _attention_weights(self, self.layer_index(layer))

    def _stack(self, key: str) -> Tensor:
        return torch.stack([self.attention_weights(i)[key] for i in range(self.cfg.n_layers)])

    W_Q = property(lambda self: self._stack("W_Q"), doc="(n_layers, n_heads, d_model, d_head)")
    W_K = property(lambda self: self._stack("W_K"), doc="(n_layers, n_kv_heads, d_model, d_head)")
    W_V = property(lambda self: self._stack("W_V"), doc="(n_layers, n_kv_heads, d_model, d_head)")
    W_O = property(lambda self: self._stack("W_O"), doc="(n_layers, n_heads, d_head, d_model)")

    @property
    def W_out(self) -> Tensor:
        """(n_layers, d_mlp, d_model): row i of layer l is what neuron i writes into the
        residual stream per unit of activation."""
        downs = [block_part(self.parts, b, "mlp_down").weight for b in self.parts["blocks"]]
        return torch.stack([w if self.cfg.architecture == "gpt2" else w.T for w in downs])

    def to(self, *args, **kwargs) -> "HookedModel":
        super().to(*args, **kwargs)
        self.cfg.device = str(self.W_E.device)
        return self

    def __repr__(self) -> str:
        c = self.cfg
        return (f"HookedModel({c.model_name}: {c.n_layers} layers, {c.n_heads} heads "
                f"({c.n_kv_heads} kv), d_model {c.d_model}, d_vocab {c.d_vocab}, on {c.device})")


def _input_device(hf, embed) -> str:
    """Where the tokens go in: the embedding's device, or for a model spread over devices by
    accelerate (device_map) the device its embedding runs on ("disk" and "cpu" run on the CPU)."""
    placed = getattr(hf, "hf_device_map", None)
    if not placed:
        return str(embed.weight.device)
    name = next(n for n, m in hf.named_modules() if m is embed)
    where = next((d for prefix, d in placed.items()
                  if prefix == "" or name == prefix or name.startswith(prefix + ".")), "cpu")
    if where in ("cpu", "disk"):
        return "cpu"
    return f"cuda:{where}" if isinstance(where, int) else str(where)


def _two_arg(fn):
    """Accept hook functions written as fn(x) as well as TransformerLens's fn(x, hook). A
    function with one required argument is fn(x), even with defaults after it (the usual way to
    bind a loop variable, ``lambda x, v=v: v``), unless its second argument is named ``hook``.
    A builtin whose signature cannot be read (``torch.zeros_like``, ``torch.relu``) is fn(x): no
    builtin takes the hook."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return lambda x, hook: fn(x)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if any(p.kind == p.VAR_POSITIONAL for p in params) or len(required) > 1:
        return fn
    if len(positional) > 1 and positional[1].name == "hook":
        return fn
    return lambda x, hook: fn(x)


def _check_sampling(max_new_tokens, temperature, top_k, top_p):
    """Refuse settings transformers would take silently (a float count, a negative
    temperature) or fail on deep inside generation."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral) \
            or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")
    if not isinstance(temperature, numbers.Real) or not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)
                              or top_k < 1):
        raise ValueError(f"top_k must be a whole number >= 1 or None, got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):
        raise ValueError(f"top_p must lie in (0, 1] or be None, got {top_p!r}")


def _layer_of(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[1]) if parts[0] == "blocks" else None


# --- architectures --------------------------------------------------------------------------

def _find_parts(hf) -> dict:
    """Locate the modules we hook, for the families we support."""
    arch = getattr(hf.config, "model_type", "")
    parts = _find_family_parts(hf, arch)
    attn = block_part(parts, parts["blocks"][0], "attn")
    try:
        source = inspect.getsource(type(attn).forward)
    except (OSError, TypeError):
        source = "attention_interface"  # cannot read it: trust the family tests
    if "attention_interface" not in source and "ALL_ATTENTION_FUNCTIONS" not in source:
        raise NotImplementedError(
            f"model type {arch!r} with transformers {_transformers_version()} computes attention "
            f"itself, not through transformers' attention interface, so q, k, pattern and z "
            f"could not be hooked: upgrade transformers")
    return parts


def _find_family_parts(hf, arch: str) -> dict:
    if arch == "gpt2":
        t = hf.transformer
        return {"arch": "gpt2", "embed": t.wte, "pos_embed": t.wpe, "blocks": list(t.h),
                "ln_final": t.ln_f}
    base = getattr(hf, "model", None)
    layers = getattr(base, "layers", None)
    if arch == "gptj":
        t = hf.transformer
        return {"arch": "gptj", "embed": t.wte, "pos_embed": None, "blocks": list(t.h),
                "ln_final": t.ln_f}
    if arch == "gpt_neox":
        t = hf.gpt_neox
        return {"arch": "neox", "embed": t.embed_in, "pos_embed": None, "blocks": list(t.layers),
                "ln_final": t.final_layer_norm}
    if arch == "opt":
        d = hf.model.decoder
        problem = _opt_problem(hf.config, d)
        if problem:
            raise NotImplementedError(f"model type 'opt' is not supported with {problem}")
        return {"arch": "opt", "embed": d.embed_tokens, "pos_embed": d.embed_positions,
                "blocks": list(d.layers), "ln_final": d.final_layer_norm}
    if arch == "phi3" and layers is not None:
        return {"arch": "phi3", "embed": base.embed_tokens, "pos_embed": None,
                "blocks": list(layers), "ln_final": base.norm}
    if arch in LLAMA_FAMILY and layers is not None:
        problem = _llama_family_problem(hf, arch)
        if problem:
            raise NotImplementedError(f"model type {arch!r} is not supported yet: {problem}")
        return {"arch": "llama", "embed": base.embed_tokens, "pos_embed": None,
                "blocks": list(layers), "ln_final": base.norm}
    raise NotImplementedError(
        f"model type {arch!r} is not supported yet: the course wraps GPT-2, GPT-J, GPT-NeoX "
        f"(Pythia), OPT, Phi-3 and the Llama family ({', '.join(LLAMA_FAMILY)}; SmolLM is Llama)")


# Model types whose blocks are Llama's, x + attn(ln1(x)) then + mlp(ln2(.)) with a gated MLP, or
# that with norms after the sublayers as well (Gemma 2 and 3) or instead (OLMo 2): attn_out and
# mlp_out are then what is added to the residual stream, after the norm. Others are refused
# rather than wrapped by their module names, where a parallel block or a residual multiplier
# would make resid_mid or attn_out silently wrong.
LLAMA_FAMILY = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo2")


def _llama_family_problem(hf, arch: str) -> str | None:
    """Why a model of a Llama-family type cannot be wrapped as Llama, or None."""
    block = hf.model.layers[0]
    missing = [name for name in ("self_attn", "mlp", "post_attention_layernorm")
               if not hasattr(block, name)]
    if not hasattr(block, "input_layernorm") and not hasattr(block, "post_feedforward_layernorm"):
        missing.append("input_layernorm")
    if missing or not hasattr(block.mlp, "gate_proj"):
        return f"its blocks lack {', '.join(missing) or 'a gated MLP'}"
    if arch.startswith("gemma") and not hasattr(hf.model.embed_tokens, "embed_scale"):
        return (f"with transformers {_transformers_version()} Gemma scales its embeddings outside "
                f"the embedding module, so hook_embed would not be the residual stream's start: "
                f"upgrade transformers")
    return None


def _opt_problem(config, decoder) -> str | None:
    """Why an OPT model cannot be wrapped, or None. OPT-350m normalises after each sublayer's
    residual sum (so resid_pre + attn_out is not what the MLP's block reads) and projects its
    embeddings in and out of a smaller width (so hook_embed is not the residual stream)."""
    if not config.do_layer_norm_before:
        return ("do_layer_norm_before=False (OPT-350m): it normalises the residual stream "
                "itself after each sublayer, so resid_mid and resid_post would not be sums of "
                "sublayer outputs")
    if decoder.project_in is not None or decoder.project_out is not None:
        return (f"word_embed_proj_dim {config.word_embed_proj_dim} != hidden_size "
                f"{config.hidden_size}: its embeddings are projected into the residual stream, "
                f"so hook_embed would not be where the stream starts")
    if decoder.final_layer_norm is None:
        return "no final layer norm (_remove_final_layer_norm), so ln_final has no module"
    return None


def _transformers_version() -> str:
    import transformers
    return transformers.__version__


def block_part(parts: dict, block, what: str):
    """The attention, MLP, norm or MLP projection module of one block."""
    if parts["arch"] == "gpt2":
        return {"attn": block.attn, "mlp": block.mlp, "ln1": block.ln_1, "ln2": block.ln_2,
                "mlp_in": block.mlp.c_fc, "mlp_down": block.mlp.c_proj, "attn_out": block.attn,
                "mlp_out": block.mlp}[what]
    if parts["arch"] == "gptj":  # parallel: attention and MLP read ln_1's output
        return {"attn": block.attn, "mlp": block.mlp, "ln1": block.ln_1, "ln2": None,
                "mlp_in": block.mlp.fc_in, "mlp_down": block.mlp.fc_out, "attn_out": block.attn,
                "mlp_out": block.mlp}[what]
    if parts["arch"] == "opt":  # no MLP module: fc1 and fc2 are the block's own, on (b * p, d)
        return {"attn": block.self_attn, "mlp": None, "ln1": block.self_attn_layer_norm,
                "ln2": block.final_layer_norm, "mlp_in": block.fc1, "mlp_down": block.fc2,
                "attn_out": block.self_attn, "mlp_out": block.fc2}[what]
    if parts["arch"] == "neox":
        return {"attn": block.attention, "mlp": block.mlp, "ln1": block.input_layernorm,
                "ln2": block.post_attention_layernorm, "mlp_in": block.mlp.dense_h_to_4h,
                "mlp_down": block.mlp.dense_4h_to_h, "attn_out": block.attention,
                "mlp_out": block.mlp}[what]
    post = hasattr(block, "post_feedforward_layernorm")  # norms after the sublayers
    if what in ("attn", "mlp", "mlp_in", "mlp_down"):
        gate = block.mlp.gate_up_proj if parts["arch"] == "phi3" else block.mlp.gate_proj
        return {"attn": block.self_attn, "mlp": block.mlp, "mlp_in": gate,
                "mlp_down": block.mlp.down_proj}[what]
    if what == "ln1":
        return getattr(block, "input_layernorm", None)
    if what == "ln2":  # what the MLP reads: Gemma 2's pre_feedforward_layernorm; none in OLMo 2
        return getattr(block, "pre_feedforward_layernorm", None) if post else \
            block.post_attention_layernorm
    if what == "attn_out":  # what is added to the residual stream
        return block.post_attention_layernorm if post else block.self_attn
    if what == "mlp_out":
        return block.post_feedforward_layernorm if post else block.mlp
    raise KeyError(what)


def _make_config(hf, parts, name) -> Config:
    c = hf.config
    if parts["arch"] == "gpt2":
        d_model, n_heads = c.n_embd, c.n_head
        return Config(name, c.n_layer, n_heads, n_heads, d_model, d_model // n_heads,
                      c.n_inner or 4 * d_model, c.vocab_size, c.n_positions, "gpt2", "LN",
                      "standard", c.activation_function, str(hf.device))
    if parts["arch"] == "gptj":
        return Config(name, c.n_layer, c.n_head, c.n_head, c.n_embd, c.n_embd // c.n_head,
                      c.n_inner or 4 * c.n_embd, c.vocab_size, c.n_positions, "gptj", "LN",
                      "rotary", c.activation_function, str(hf.device))
    if parts["arch"] == "opt":
        return Config(name, c.num_hidden_layers, c.num_attention_heads, c.num_attention_heads,
                      c.hidden_size, c.hidden_size // c.num_attention_heads, c.ffn_dim,
                      c.vocab_size, c.max_position_embeddings, "opt", "LN", "standard",
                      c.activation_function, str(hf.device))
    if parts["arch"] == "neox":
        return Config(name, c.num_hidden_layers, c.num_attention_heads, c.num_attention_heads,
                      c.hidden_size, c.hidden_size // c.num_attention_heads, c.intermediate_size,
                      c.vocab_size, c.max_position_embeddings, "neox", "LN", "rotary", c.hidden_act,
                      str(hf.device))
    d_head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    act_fn = getattr(c, "hidden_activation", None) or c.hidden_act  # Gemma names it so
    block = parts["blocks"][0]
    block_norms = "pre" if not hasattr(block, "post_feedforward_layernorm") else \
        "sandwich" if hasattr(block, "input_layernorm") else "post"
    return Config(name, c.num_hidden_layers, c.num_attention_heads,
                  getattr(c, "num_key_value_heads", None) or c.num_attention_heads, c.hidden_size,
                  d_head, c.intermediate_size, c.vocab_size, c.max_position_embeddings,
                  "phi3" if parts["arch"] == "phi3" else "llama",
                  "RMS", "rotary", act_fn, str(hf.device), block_norms)


def _attention_weights(model: HookedModel, layer: int) -> dict[str, Tensor]:
    c, block = model.cfg, model.parts["blocks"][layer]
    attn = block_part(model.parts, block, "attn")
    h, kv, dh, d = c.n_heads, c.n_kv_heads, c.d_head, c.d_model
    if c.architecture == "gpt2":
        w, b = attn.c_attn.weight, attn.c_attn.bias  # Conv1D: (d_model, 3 * d_model)
        wq, wk, wv = w.split(d, dim=1)
        bq, bk, bv = b.split(d, dim=0)
        w_o, b_o = attn.c_proj.weight, attn.c_proj.bias  # (d_model, d_model)
    elif c.architecture == "neox":  # Linear (3 * d_model, d_model), per head [q | k | v]
        w = attn.query_key_value.weight.view(h, 3, dh, d)
        wq, wk, wv = (w[:, i].reshape(h * dh, d).T for i in range(3))
        b = attn.query_key_value.bias
        b = b.view(h, 3, dh) if b is not None else torch.zeros(h, 3, dh, device=w.device,
                                                               dtype=w.dtype)
        bq, bk, bv = (b[:, i].reshape(h * dh) for i in range(3))
        w_o = attn.dense.weight.T
        b_o = attn.dense.bias if attn.dense.bias is not None else torch.zeros(
            d, device=w.device, dtype=w.dtype)
    elif c.architecture == "phi3":  # Linear ((h + 2 kv) * d_head, d_model): [q | k | v]
        wq, wk, wv = attn.qkv_proj.weight.split([h * dh, kv * dh, kv * dh], dim=0)
        wq, wk, wv = wq.T, wk.T, wv.T
        zeros = lambda n: torch.zeros(n * dh, device=wq.device, dtype=wq.dtype)  # noqa: E731
        b = attn.qkv_proj.bias
        bq, bk, bv = b.split([h * dh, kv * dh, kv * dh]) if b is not None else (
            zeros(h), zeros(kv), zeros(kv))
        w_o = attn.o_proj.weight.T
        b_o = attn.o_proj.bias if attn.o_proj.bias is not None else torch.zeros(
            d, device=wq.device, dtype=wq.dtype)
    else:
        wq, wk, wv = attn.q_proj.weight.T, attn.k_proj.weight.T, attn.v_proj.weight.T
        zeros = lambda n: torch.zeros(n * dh, device=wq.device, dtype=wq.dtype)  # noqa: E731
        bq = attn.q_proj.bias if attn.q_proj.bias is not None else zeros(h)
        bk = attn.k_proj.bias if attn.k_proj.bias is not None else zeros(kv)
        bv = attn.v_proj.bias if attn.v_proj.bias is not None else zeros(kv)
        out = attn.out_proj if c.architecture in ("gptj", "opt") else attn.o_proj
        w_o = out.weight.T
        b_o = out.bias if out.bias is not None else torch.zeros(d, device=wq.device,
                                                                dtype=wq.dtype)
    return {
        "W_Q": wq.reshape(d, h, dh).permute(1, 0, 2), "W_K": wk.reshape(d, kv, dh).permute(1, 0, 2),
        "W_V": wv.reshape(d, kv, dh).permute(1, 0, 2), "W_O": w_o.reshape(h, dh, d),
        "b_Q": bq.reshape(h, dh), "b_K": bk.reshape(kv, dh), "b_V": bv.reshape(kv, dh), "b_O": b_o,
    }

