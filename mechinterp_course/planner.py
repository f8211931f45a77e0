"""How much memory a model's weights and activation caches take, before running it: chapter 02's
arithmetic for every supported family, from the model or from its config alone (built on
PyTorch's meta device, which has shapes and no storage, so a 70B model is planned in seconds on a
laptop). ``run_with_cache`` uses the same arithmetic to warn before a cache that cannot fit.

Sizes are logical: a cached q, k or v is a view of its fused projection in GPT-2, GPT-NeoX and
Phi-3, and caching one of them alone keeps the whole projection alive.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch

from .hooked import LAYER_NAMES

# one layer's activation shape, from the Config c, batch b and positions p
LAYER_SHAPES = {
    "resid_pre": lambda c, b, p: (b, p, c.d_model),
    "resid_mid": lambda c, b, p: (b, p, c.d_model),
    "resid_post": lambda c, b, p: (b, p, c.d_model),
    "attn_out": lambda c, b, p: (b, p, c.d_model),
    "mlp_out": lambda c, b, p: (b, p, c.d_model),
    "ln1": lambda c, b, p: (b, p, c.d_model),
    "ln2": lambda c, b, p: (b, p, c.d_model),
    "q": lambda c, b, p: (b, p, c.n_heads, c.d_head),
    "rot_q": lambda c, b, p: (b, p, c.n_heads, c.d_head),
    "z": lambda c, b, p: (b, p, c.n_heads, c.d_head),
    "k": lambda c, b, p: (b, p, c.n_kv_heads, c.d_head),
    "rot_k": lambda c, b, p: (b, p, c.n_kv_heads, c.d_head),
    "v": lambda c, b, p: (b, p, c.n_kv_heads, c.d_head),
    "attn_scores": lambda c, b, p: (b, c.n_heads, p, p),
    "pattern": lambda c, b, p: (b, c.n_heads, p, p),
    "mlp_pre": lambda c, b, p: (b, p, c.d_mlp),
    "mlp_pre_linear": lambda c, b, p: (b, p, c.d_mlp),
    "mlp_post": lambda c, b, p: (b, p, c.d_mlp),
}
GLOBAL_SHAPES = {
    "hook_embed": lambda c, b, p: (b, p, c.d_model),
    # GPT-2 embeds positions once for the batch; OPT per row, from the attention mask
    "hook_pos_embed": lambda c, b, p: (1 if c.architecture == "gpt2" else b, p, c.d_model),
    "ln_final.hook_normalized": lambda c, b, p: (b, p, c.d_model),
}


SHORT_NAMES = {full.split(".", 2)[2]: short for short, full in LAYER_NAMES.items()}


class MemoryWarning(UserWarning):
    """A cache about to be made that will not fit in the memory left."""


def layer_names(cfg) -> list[str]:
    """The per-layer names a model of this Config has (short names)."""
    names = list(LAYER_SHAPES)
    if cfg.positional_embedding_type != "rotary":
        names = [n for n in names if n not in ("rot_q", "rot_k")]
    if cfg.architecture not in ("llama", "phi3"):  # not gated
        names.remove("mlp_pre_linear")
    if cfg.block_norms == "post":  # OLMo 2
        names = [n for n in names if n not in ("ln1", "ln2")]
    if cfg.architecture == "gptj":  # one norm for attention and MLP
        names.remove("ln2")
    return names


def global_names(cfg) -> list[str]:
    names = list(GLOBAL_SHAPES)
    if cfg.positional_embedding_type != "standard":
        names.remove("hook_pos_embed")
    return names


def name_bytes(cfg, short: str, batch: int, pos: int, dtype: torch.dtype) -> int:
    """Bytes of one activation (a per-layer short name, for one layer, or a global full name)."""
    shape = (LAYER_SHAPES.get(short) or GLOBAL_SHAPES[short])(cfg, batch, pos)
    return _bytes(shape, dtype)


def _bytes(shape, dtype) -> int:
    n = 1
    for size in shape:
        n *= size
    return n * torch.empty(0, dtype=dtype).element_size()


@dataclass
class MemoryPlan:
    """What a model takes, in bytes: its weights, and a cache of each name (a per-layer name
    over all its layers) for `batch` sequences of `pos` tokens."""

    model_name: str
    batch: int
    pos: int
    dtype: torch.dtype
    weights: int
    per_name: dict[str, int]

    @property
    def full_cache(self) -> int:
        """Every name cached: run_with_cache with names=None."""
        return sum(self.per_name.values())

    def __str__(self) -> str:
        rows = [f"{self.model_name}: {self.batch} x {self.pos} tokens, {self.dtype}",
                f"  weights      {_human(self.weights)}",
                f"  full cache   {_human(self.full_cache)}"]
        rows += [f"  {name:<12} {_human(size)}" for name, size in
                 sorted(self.per_name.items(), key=lambda item: -item[1])]
        return "\n".join(rows)


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def plan(model, batch: int = 1, pos: int | None = None,
         dtype: torch.dtype | None = None) -> MemoryPlan:
    """The memory plan of `model`: a HookedModel, or without loading any weights a Hugging Face
    config, a local folder or a hub id (its config.json only). pos: tokens a sequence, by default
    the model's context; dtype: by default the model's own (float32 for a config)."""
    from .hooked import HookedModel, _find_parts, _make_config

    if isinstance(model, HookedModel):
        cfg, weights = model.cfg, model.hf
        dtype = dtype or model.W_E.dtype
    else:
        hf = _on_meta(model, dtype or torch.float32)
        cfg, weights = _make_config(hf, _find_parts(hf), _config_name(model)), hf
        dtype = dtype or torch.float32
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
    pos = cfg.n_ctx if pos is None else pos
    if isinstance(pos, bool) or not isinstance(pos, int) or pos < 1:
        raise ValueError(f"pos must be a whole number >= 1, got {pos!r}")
    per_name = {name: cfg.n_layers * name_bytes(cfg, name, batch, pos, dtype)
                for name in layer_names(cfg)}
    per_name |= {name: name_bytes(cfg, name, batch, pos, dtype) for name in global_names(cfg)}
    size = sum(p.numel() * p.element_size() for p in weights.parameters())
    return MemoryPlan(cfg.model_name, batch, pos, dtype, size, per_name)


def _config_name(config) -> str:
    return config if isinstance(config, str) else getattr(config, "name_or_path", "") or \
        getattr(config, "model_type", "model")


def _on_meta(config, dtype):
    """The model a config describes, on the meta device: shapes and no storage."""
    from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

    if not isinstance(config, PretrainedConfig):
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        config = AutoConfig.from_pretrained(str(config), trust_remote_code=False,
                                            **({"local_files_only": True} if offline else {}))
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=False).to(dtype)


def free_bytes(device) -> int | None:
    """Memory left on `device`, where it can be read: a CUDA device's free memory, or on Linux
    the system's available memory for the CPU; None elsewhere."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def warn_if_too_big(model, names: list[str], batch: int, pos: int, device) -> None:
    """Warn (MemoryWarning) before caching `names` (full names) when they need more memory than
    `device` has left."""
    cfg, dtype = model.cfg, model.W_E.dtype
    need = 0
    for name in names:
        parts = name.split(".")
        if parts[0] == "blocks":
            need += name_bytes(cfg, SHORT_NAMES[".".join(parts[2:])], batch, pos, dtype)
        elif name in GLOBAL_SHAPES:
            need += name_bytes(cfg, name, batch, pos, dtype)
    if need < 64 << 20:
        return  # not worth reading the system's memory for
    free = free_bytes(device)
    if free is not None and need > free:
        warnings.warn(
            f"this cache takes about {_human(need)} ({batch} x {pos} tokens) and {device} has "
            f"{_human(free)} left: cache fewer names (names=[...]), fewer or shorter sequences, "
            f"or pass device= to keep it elsewhere", MemoryWarning, stacklevel=3)
