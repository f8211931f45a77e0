"""The course's activation names on nnsight's module paths (Fiotto-Kaufman et al. 2025), so that an
analysis written with the course's names runs on a model too large for any machine a learner has,
through NDIF's remote execution (``remote=True``), with as little changed as possible.

nnsight reads an activation as a module's input or output inside ``with lm.trace(...)``, and only
in the order the forward pass makes them. `module_path` says where each of the course's names
lives; `trace_cache` asks for them in that order and returns a dict indexed like the course's
cache. The trace body is plain nnsight (the paths are worked out before it), so the same call
runs locally, on NDIF, or in nnsight's local simulation of NDIF (``remote="local"``).
"""

from __future__ import annotations

import importlib.util

# Where each per-layer name is, under one block: (module path below the block, "input",
# "output", or "output0", the first item of a tuple output), in the order a forward pass makes
# them. resid_mid is no module's input or output (it is resid_pre + attn_out).
BLOCK_PATHS = {
    "gpt2": {"resid_pre": ("", "input"), "ln1": ("ln_1", "output"),
             "z": ("attn.c_proj", "input"), "attn_out": ("attn", "output0"),
             "ln2": ("ln_2", "output"), "mlp_post": ("mlp.c_proj", "input"),
             "mlp_out": ("mlp", "output"), "resid_post": ("", "output")},
    "llama": {"resid_pre": ("", "input"), "ln1": ("input_layernorm", "output"),
              "z": ("self_attn.o_proj", "input"), "attn_out": ("self_attn", "output0"),
              "ln2": ("post_attention_layernorm", "output"),
              "mlp_post": ("mlp.down_proj", "input"), "mlp_out": ("mlp", "output"),
              "resid_post": ("", "output")},
}
BLOCKS = {"gpt2": "transformer.h", "llama": "model.layers"}
GLOBAL_PATHS = {"gpt2": {"embed": "transformer.wte", "ln_final": "transformer.ln_f"},
                "llama": {"embed": "model.embed_tokens", "ln_final": "model.norm"}}
LLAMA_TYPES = ("llama", "mistral", "qwen2")  # Llama's module names and block


def family(model_type: str) -> str:
    """The path family of a transformers model_type: "gpt2" or "llama"."""
    if model_type == "gpt2":
        return "gpt2"
    if model_type in LLAMA_TYPES:
        return "llama"
    raise NotImplementedError(f"model type {model_type!r}: the nnsight paths are written for "
                              f"GPT-2 and {', '.join(LLAMA_TYPES)}")


def module_path(model_type: str, name: str, layer: int | None = None) -> tuple[str, str]:
    """Where `name` (at `layer`, for a per-layer name) lives in a model of this type, as
    (module path, "input" or "output"): ("model.layers.40.mlp", "output") for mlp_out at layer 40
    of a Llama; "output0" means the first item of the module's output tuple."""
    fam = family(model_type)
    if name in GLOBAL_PATHS[fam]:
        if layer is not None:
            raise ValueError(f"{name!r} is not per-layer: give no layer")
        return GLOBAL_PATHS[fam][name], "output"
    if name == "resid_mid":
        raise KeyError("resid_mid is no module's input or output: take resid_pre + attn_out")
    if name not in BLOCK_PATHS[fam]:
        raise KeyError(f"{name!r} has no nnsight path here; these do: "
                       f"{sorted(BLOCK_PATHS[fam]) + sorted(GLOBAL_PATHS[fam])}")
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ValueError(f"{name!r} is per-layer: give a layer, got {layer!r}")
    below, where = BLOCK_PATHS[fam][name]
    return ".".join(p for p in (BLOCKS[fam], str(layer), below) if p), where


def _order(fam: str, key) -> tuple:
    """Where a (name, layer) or global name comes in a forward pass."""
    if isinstance(key, str):
        return (-1,) if key == "embed" else (float("inf"),)
    name, layer = key
    return (layer, list(BLOCK_PATHS[fam]).index(name))


def forward_order(keys, fam: str = "gpt2") -> list:
    """The keys, ("mlp_out", 2) or "ln_final", in the order a forward pass makes them: the order
    nnsight must read them in."""
    return sorted(keys, key=lambda k: _order(fam, k))


def _envoy(lm, path: str):
    envoy = lm
    for part in path.split("."):
        envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
    return envoy


def trace_cache(lm, tokens, keys, remote=False) -> dict:
    """Run nnsight's `lm` (a LanguageModel) on `tokens` and return the activations `keys` asks
    for, ("resid_post", 3) or "ln_final", as a dict with those keys. z comes back flat,
    (batch, pos, n_heads * d_head), as o_proj's input. remote: False (here), True (NDIF) or
    "local" (nnsight's simulation of NDIF)."""
    model_type = lm.config.model_type
    fam = family(model_type)
    keys = [k if isinstance(k, str) else tuple(k) for k in keys]
    wanted = forward_order(set(keys), fam)
    where = [module_path(model_type, *((k,) if isinstance(k, str) else k)) for k in wanted]
    envoys = [(_envoy(lm, path), kind) for path, kind in where]
    import nnsight

    with lm.trace(tokens, remote=remote):
        saved = nnsight.save([])  # the container is saved, its items are plain values
        for envoy, kind in envoys:
            saved.append(envoy.output[0] if kind == "output0" else getattr(envoy, kind))
    return dict(zip(wanted, saved))


def logit_lens(lm, tokens, answer: int, remote=False):
    """n_layers floats: the log-probability of token `answer` at the last position of the first
    sequence, read through the final norm and the unembedding after each block (chapter 03's
    logit lens). Computed inside the trace, so remotely only n_layers numbers come back."""
    import nnsight

    fam = family(lm.config.model_type)
    blocks, norm = _envoy(lm, BLOCKS[fam]), _envoy(lm, GLOBAL_PATHS[fam]["ln_final"])
    unembed = lm.lm_head
    n_layers = len(blocks)
    with lm.trace(tokens, remote=remote):
        lensed = nnsight.save([])
        for layer in range(n_layers):
            out = blocks[layer].output
            resid = out[0] if isinstance(out, tuple) else out  # transformers 4 returns a tuple
            logits = unembed(norm(resid[:1, -1]))
            lensed.append(logits.float().log_softmax(-1)[0, answer])
    return [float(x.detach()) for x in lensed]


def patching_grid(lm, clean, corrupt, answer, wrong, layers=None, remote=False):
    """Chapter 07's activation-patching grid in one trace: (len(layers), pos, n), the normalised
    logit difference (0: the corrupted run's, 1: the clean run's) when resid_pre of one layer at
    one position is put back from the clean prompt into the corrupted one.

    clean, corrupt: (n, pos) token ids of equal length; answer, wrong: (n,) token ids; layers:
    which layers (default all). The clean rows, the corrupted rows and one copy of the corrupted
    rows per (layer, position) run as one batch, and each copy takes the clean rows' activation
    at its cell, so the whole grid is one forward pass, and remotely one request that sends back
    only the grid's numbers."""
    import torch

    clean, corrupt = torch.as_tensor(clean), torch.as_tensor(corrupt)
    if clean.dim() != 2 or clean.shape != corrupt.shape:
        raise ValueError(f"clean and corrupt must be (n, pos) token ids of one shape, got "
                         f"{tuple(clean.shape)} and {tuple(corrupt.shape)}")
    n, n_pos = clean.shape
    blocks = _envoy(lm, BLOCKS[family(lm.config.model_type)])
    layers = list(range(len(blocks))) if layers is None else list(layers)
    if not all(isinstance(layer, int) and 0 <= layer < len(blocks) for layer in layers):
        raise ValueError(f"layers must be whole numbers in [0, {len(blocks)}), got {layers}")
    cells = [(layer, pos) for layer in layers for pos in range(n_pos)]
    batch = torch.cat([clean, corrupt] + [corrupt] * len(cells))  # ((2 + cells) * n, pos)
    rows = torch.arange(len(batch))
    answer = torch.as_tensor(answer).repeat(len(cells) + 2)
    wrong = torch.as_tensor(wrong).repeat(len(cells) + 2)
    with torch.no_grad(), lm.trace(batch, remote=remote):
        for layer in sorted(set(layers)):  # in the order the model runs them
            resid = blocks[layer].input
            for i, (at, pos) in enumerate(cells):
                if at == layer:
                    resid[(i + 2) * n:(i + 3) * n, pos] = resid[:n, pos]
        logits = lm.lm_head.output[:, -1]
        diff = (logits[rows, answer] - logits[rows, wrong]).save()
    from .interventions import normalised

    diff = diff.detach().float().view(len(cells) + 2, n)
    return normalised(diff[2:], diff[0], diff[1]).view(len(layers), n_pos, n)


def available() -> tuple[bool, str]:
    """Whether NDIF's remote execution can be used from here, and if not, why (one line)."""
    if importlib.util.find_spec("nnsight") is None:
        return False, "nnsight is not installed: pip install nnsight"
    import os

    from .models import is_online

    if not (os.environ.get("NDIF_API_KEY") or _configured_key()):
        return False, "no NDIF API key: get one at https://ndif.us and set NDIF_API_KEY"
    if not is_online():
        return False, "offline: NDIF cannot be reached from here"
    return True, "NDIF is reachable and a key is set"


def _configured_key() -> str | None:
    from nnsight import CONFIG

    return getattr(getattr(CONFIG, "API", None), "APIKEY", None)
