"""Planted mechanisms: small GPT-2 models whose circuits are known because their weights were set
by hand, so that a method's answer can be scored against the truth. The course model's world
says *what* it knows, never *how*; these models say how.

Every planted model is an ordinary GPT-2 checkpoint (safetensors, a word-level tokenizer) that
`mc.load_model("planted-<name>")` loads offline, and `truth(name)` is its ground truth as data.
`python -m mechinterp_course.planted` rebuilds the shipped files from this module alone.

The construction: the residual stream is split into named one-hot blocks (the token, the
position, the previous token, the answer). Every vector in the stream is a sum of a few one-hot
vectors, so its norm is the same at every position: each LayerNorm shifts it by the same small
amount everywhere (which no score or logit difference sees) and scales it by a known gain,
which the weights undo.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

FOLDER = Path(__file__).parent / "planted_models"
WORDS = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["ab", "cd", "ef", "gh", "ij"]
N_VOCAB = 1 + len(WORDS)  # "<bos>" and 31 words
N_POS = 64
D_HEAD = 64  # as many as positions, so one head can shift position by one exactly
MATCH = 20.0  # a matching key's attention score above the others': effectively one-hot
ANSWER = 10.0  # the answer's logit above the other tokens'


def _blocks(names_and_sizes):
    """{name: slice} for consecutive blocks of the residual stream."""
    out, start = {}, 0
    for name, size in names_and_sizes:
        out[name] = slice(start, start + size)
        start += size
    return out, start


def _ln_gain(n_ones: int, d_model: int) -> float:
    """LayerNorm's output for a coordinate at 1 when the vector is n_ones ones among zeros."""
    mean = n_ones / d_model
    std = (n_ones * (1 - mean) ** 2 + (d_model - n_ones) * mean ** 2) / d_model
    return (1 - mean) / std ** 0.5


def build_induction(redundant: bool = False):
    """Two layers, three heads each. L0H0 is a previous-token head (it writes the previous
    token into its own block); L1H0 is an induction head (it attends from a token to the
    position after that token's previous occurrence, matching on L0H0's block, and writes that
    position's token into the answer, which the unembedding reads). Decoys: L0H1 is also a
    previous-token head, and L1H1 attends exactly as L1H0 does, but nothing reads what they
    write (it changes only the norm that later LayerNorms divide by). Heads 2 and 3 of each
    block and both MLPs write nothing.

    redundant: L1H1 is a second induction head, not a decoy: both write the answer, and each
    alone suffices, so ablating either one shows next to nothing (the trap behind "backup"
    heads)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    blocks, used = _blocks([("token", N_VOCAB), ("position", N_POS), ("previous", N_VOCAB),
                            ("decoy_previous", N_VOCAB), ("answer", N_VOCAB),
                            ("decoy_answer", N_VOCAB)])
    n_heads = 4
    d_model = n_heads * D_HEAD  # 256: the blocks and 32 dimensions nothing writes
    assert used <= d_model
    config = GPT2Config(vocab_size=N_VOCAB, n_positions=N_POS, n_embd=d_model, n_layer=2,
                        n_head=n_heads, n_inner=4, activation_function="gelu_new",
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    hf = GPT2LMHeadModel(config)
    tok, pos, prev = blocks["token"], blocks["position"], blocks["previous"]
    with torch.no_grad():
        for p in hf.parameters():
            p.zero_()
        for name, p in hf.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == \
                    "transformer.ln_f.weight":
                p.fill_(1.0)
        hf.transformer.wte.weight[:, tok] = torch.eye(N_VOCAB)
        hf.transformer.wpe.weight[:, pos] = torch.eye(N_POS)

        def head(layer, h, q_from, q_map, k_from, k_map, v_from, v_to, gain_in):
            """Set head h of a layer: its score is (q block @ q_map) . (k block @ k_map), MATCH
            for a match after the 1/sqrt(d_head) scaling; it copies its value block (one-hot)
            into v_to. Each read divides by LayerNorm's gain, so the head sees the ones."""
            attn = hf.transformer.h[layer].attn
            W = attn.c_attn.weight  # (d_model, 3 * d_model): query, key, value columns
            q, k, v = (part * d_model + h * D_HEAD for part in range(3))  # first columns
            W[q_from, q: q + q_map.shape[1]] = q_map * MATCH * D_HEAD ** 0.5 / gain_in
            W[k_from, k: k + k_map.shape[1]] = k_map / gain_in
            n = v_from.stop - v_from.start
            W[v_from, v: v + n] = torch.eye(n) / gain_in
            attn.c_proj.weight[h * D_HEAD: h * D_HEAD + n, v_to] = torch.eye(n)  # (in, out)

        gain0, gain1 = _ln_gain(2, d_model), _ln_gain(4, d_model)
        shift = torch.eye(N_POS).roll(1, dims=1)  # key at position j matches query at j + 1
        eye_pos, eye_tok = torch.eye(N_POS), torch.eye(N_VOCAB)
        # block 0: previous-token heads (the real one and a decoy); both read the position
        head(0, 0, pos, eye_pos, pos, shift, tok, prev, gain0)
        head(0, 1, pos, eye_pos, pos, shift, tok, blocks["decoy_previous"], gain0)
        # block 1: the induction head and a decoy with the same pattern
        head(1, 0, tok, eye_tok, prev, eye_tok, tok, blocks["answer"], gain1)
        head(1, 1, tok, eye_tok, prev, eye_tok, tok,
             blocks["answer" if redundant else "decoy_answer"], gain1)
        # the final norm sees six ones: token, position, both previous blocks, both answers
        hf.lm_head.weight[:, blocks["answer"]] = torch.eye(N_VOCAB) * ANSWER / _ln_gain(6, d_model)
    hf.eval().requires_grad_(False)
    if redundant:
        return hf, {
            "task": "predict the token that followed the current token's previous occurrence, "
                    "by either of two induction heads",
            "blocks": {name: [s.start, s.stop] for name, s in blocks.items()
                       if name != "decoy_answer"},
            "heads": {"previous token": [0, 0], "induction": [1, 0], "induction (backup)": [1, 1]},
            "decoys": {"previous token look-alike": [0, 1]},
            "unused": {"heads": [[0, 2], [0, 3], [1, 2], [1, 3]], "mlps": [0, 1]},
            "redundant": [[[1, 0], [1, 1]]],
            "edges": [{"from": [0, 0], "to": [1, h], "via": "key",
                       "what": "the previous token, which each induction head matches on"}
                      for h in (0, 1)],
        }
    truth = {
        "task": "predict the token that followed the current token's previous occurrence",
        "blocks": {name: [s.start, s.stop] for name, s in blocks.items()},
        "heads": {"previous token": [0, 0], "induction": [1, 0]},
        "decoys": {"previous token look-alike": [0, 1], "induction look-alike": [1, 1]},
        "unused": {"heads": [[0, 2], [0, 3], [1, 2], [1, 3]], "mlps": [0, 1]},
        "edges": [{"from": [0, 0], "to": [1, 0], "via": "key",
                   "what": "the previous token, which the induction head matches its query on"}],
    }
    return hf, truth


def tokenizer():
    """A word-level tokenizer: "<bos>" and the words in WORDS, split on spaces."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<bos>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<bos>",
                                   unk_token="<bos>", pad_token="<bos>")


BUILDERS = {"induction": build_induction,
            "redundant": lambda: build_induction(redundant=True)}


def zoo() -> dict[str, str]:
    """The planted models, each with the task it does."""
    return {name: truth(name)["task"] for name in BUILDERS}


def truth(name: str) -> dict:
    """The planted model's ground truth: which components do what, and the decoys."""
    if name not in BUILDERS:
        raise KeyError(f"no planted model {name!r}; the zoo: {', '.join(BUILDERS)}")
    return json.loads((FOLDER / name / "truth.json").read_text())


def write(name: str, folder: Path = FOLDER) -> Path:
    hf, facts = BUILDERS[name]()
    out = folder / name
    hf.half().save_pretrained(out, safe_serialization=True)  # half the size; loads as float32
    tokenizer().save_pretrained(out)
    (out / "truth.json").write_text(json.dumps(facts, indent=1) + "\n")
    return out


if __name__ == "__main__":
    for planted_name in BUILDERS:
        print("wrote", write(planted_name))
