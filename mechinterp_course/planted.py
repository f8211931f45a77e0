"""Planted mechanisms: small GPT-2 models whose circuits are known because their weights were set
by hand, so that a method's answer can be scored against the truth. The course model's world
says *what* it knows, never *how*; these models say how.

Every planted model is an ordinary GPT-2 checkpoint (safetensors, a word-level tokenizer) that
`mc.load_model("planted-<name>")` loads offline, and `truth(name)` is its ground truth as data.
`python -m mechinterp_course.planted` rebuilds the shipped files from this module alone.

The construction: the residual stream is split into named one-hot blocks (the token, the
position, the previous token, the answer; two-hot codes in planted-superposition). Every
vector in the stream is a sum of a few ones, so its norm is the same at every position: each
LayerNorm shifts it by the same small amount everywhere (which no score or logit difference
sees) and scales it by a known gain, which the weights undo.
"""

from __future__ import annotations

import itertools
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
    return _ln_on_off(n_ones, d_model)[0]


def _ln_on_off(n_ones: int, d_model: int) -> tuple[float, float]:
    """LayerNorm's output for a coordinate at 1, and at 0, when the vector is n_ones ones."""
    mean = n_ones / d_model
    std = (mean * (1 - mean)) ** 0.5
    return (1 - mean) / std, -mean / std


def _head(hf, layer, h, q_from, q_map, k_from, k_map, v_from, v_to, gain_in):
    """Set head h of a layer: its score is (q block @ q_map) . (k block @ k_map), MATCH for a
    match after the 1/sqrt(d_head) scaling; it copies its value block (one-hot) into v_to. Each
    read divides by LayerNorm's gain, so the head sees the ones."""
    d_model = hf.config.n_embd
    attn = hf.transformer.h[layer].attn
    W = attn.c_attn.weight  # (d_model, 3 * d_model): query, key, value columns
    q, k, v = (part * d_model + h * D_HEAD for part in range(3))  # first columns
    W[q_from, q: q + q_map.shape[1]] = q_map * MATCH * D_HEAD ** 0.5 / gain_in
    W[k_from, k: k + k_map.shape[1]] = k_map / gain_in
    n = v_from.stop - v_from.start
    W[v_from, v: v + n] = torch.eye(n) / gain_in
    attn.c_proj.weight[h * D_HEAD: h * D_HEAD + n, v_to] = torch.eye(n)  # (in, out)


def _blank_gpt2(d_model: int, n_layer: int, n_inner: int):
    """A GPT-2 with every weight zero and every LayerNorm's gain one, for the builders to fill;
    no dropout, untied embeddings, "<bos>" (token 0) as BOS and EOS."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=N_VOCAB, n_positions=N_POS, n_embd=d_model, n_layer=n_layer,
                        n_head=d_model // D_HEAD, n_inner=n_inner,
                        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, tie_word_embeddings=False, bos_token_id=0,
                        eos_token_id=0)
    hf = GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            gain = name.endswith(("ln_1.weight", "ln_2.weight")) or name == \
                "transformer.ln_f.weight"
            p.fill_(1.0 if gain else 0.0)
    return hf


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
    blocks, used = _blocks([("token", N_VOCAB), ("position", N_POS), ("previous", N_VOCAB),
                            ("decoy_previous", N_VOCAB), ("answer", N_VOCAB),
                            ("decoy_answer", N_VOCAB)])
    n_heads = 4
    d_model = n_heads * D_HEAD  # 256: the blocks and 32 dimensions nothing writes
    assert used <= d_model
    hf = _blank_gpt2(d_model, n_layer=2, n_inner=4)
    tok, pos, prev = blocks["token"], blocks["position"], blocks["previous"]
    with torch.no_grad():
        hf.transformer.wte.weight[:, tok] = torch.eye(N_VOCAB)
        hf.transformer.wpe.weight[:, pos] = torch.eye(N_POS)

        gain0, gain1 = _ln_gain(2, d_model), _ln_gain(4, d_model)
        shift = torch.eye(N_POS).roll(1, dims=1)  # key at position j matches query at j + 1
        eye_pos, eye_tok = torch.eye(N_POS), torch.eye(N_VOCAB)
        # block 0: previous-token heads (the real one and a decoy); both read the position
        _head(hf, 0, 0, pos, eye_pos, pos, shift, tok, prev, gain0)
        _head(hf, 0, 1, pos, eye_pos, pos, shift, tok, blocks["decoy_previous"], gain0)
        # block 1: the induction head and a decoy with the same pattern
        _head(hf, 1, 0, tok, eye_tok, prev, eye_tok, tok, blocks["answer"], gain1)
        _head(hf, 1, 1, tok, eye_tok, prev, eye_tok, tok,
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


SUBJECTS = WORDS[:12]  # A .. L: each has one fact
ATTRIBUTES = WORDS[12:24]  # M .. X: the facts' answers
RELATION = "ab"  # the last token: "what is the subject's attribute?"
FILLERS = ["Y", "Z", "cd", "ef", "gh", "ij"]  # neither subject nor answer
FACT = {s: ATTRIBUTES[(5 * i + 2) % 12] for i, s in enumerate(SUBJECTS)}  # 5: a permutation


def _memory(mlp, reads: slice, n_ones: int, d_model: int, writes: list[list[tuple[slice, int]]]):
    """Set an MLP to a key-value memory: neuron t fires (pre-activation 10, else -10, so GELU
    gives 10 or 0) when token t is in the stream, and then writes a 1 into each (block, slot) of
    writes[t]. n_ones: how many ones the stream holds where the MLP reads it."""
    on, off = _ln_on_off(n_ones, d_model)
    w = 20.0 / (on - off)  # on -> 10, off -> -10
    for t, slots in enumerate(writes):
        mlp.c_fc.weight[reads.start + t, t] = w  # Conv1D: (in, out)
        mlp.c_fc.bias[t] = 10.0 - w * on
        for block, slot in slots:
            mlp.c_proj.weight[t, block.start + slot] = 0.1


def build_fact_lookup():
    """Two layers. MLP 0 is a key-value memory: at each subject token it writes the subject's
    fact (one of twelve answer slots) into the attribute block; other tokens write its "none"
    slot. L1H0, the mover, attends from the relation token to the subject (its key: any
    attribute slot but "none") and copies the attribute block into the answer block, which the
    unembedding reads. Decoys: L1H1 attends exactly as L1H0 does and copies where the subject
    was (its position) to the last position, and MLP 1's neurons fire on the subjects and write
    their facts again, but nothing reads what either writes. So the subject's position is
    linearly decodable at the last position, and the fact at the subject's position after
    block 1, and neither is used: the probe-versus-use trap, planted."""
    k = len(ATTRIBUTES) + 1  # twelve answer slots and "none"
    blocks, used = _blocks([("token", N_VOCAB), ("position", N_POS), ("attribute", k),
                            ("answer", k), ("subject_position", N_POS),
                            ("memory_look_alike", k)])
    n_heads = 4
    d_model = n_heads * D_HEAD
    assert used <= d_model
    hf = _blank_gpt2(d_model, n_layer=2, n_inner=N_VOCAB)
    ids = {w: i + 1 for i, w in enumerate(WORDS)}
    none = len(ATTRIBUTES)
    slot = {s: ATTRIBUTES.index(FACT[s]) for s in SUBJECTS}
    by_token = ["<bos>"] + WORDS
    with torch.no_grad():
        hf.transformer.wte.weight[:, blocks["token"]] = torch.eye(N_VOCAB)
        hf.transformer.wpe.weight[:, blocks["position"]] = torch.eye(N_POS)
        # MLP 0 reads two ones (token, position) and writes the fact
        _memory(hf.transformer.h[0].mlp, blocks["token"], 2, d_model,
                [[(blocks["attribute"], slot.get(w, none))] for w in by_token])
        # L1H0 and L1H1 read three ones: the relation token's query matches any subject's key
        is_relation = torch.zeros(N_VOCAB, 1)
        is_relation[ids[RELATION]] = 1.0
        is_subject = torch.ones(k, 1)
        is_subject[none] = 0.0
        gain = _ln_gain(3, d_model)
        _head(hf, 1, 0, blocks["token"], is_relation, blocks["attribute"], is_subject,
              blocks["attribute"], blocks["answer"], gain)
        _head(hf, 1, 1, blocks["token"], is_relation, blocks["attribute"], is_subject,
              blocks["position"], blocks["subject_position"], gain)
        # MLP 1, the look-alike, reads five ones at the last position (the heads' two added)
        _memory(hf.transformer.h[1].mlp, blocks["token"], 5, d_model,
                [[(blocks["memory_look_alike"], slot.get(w, none))] for w in by_token])
        # the final norm sees six ones at the last position; answer slot j is ATTRIBUTES[j]
        for j, word in enumerate(ATTRIBUTES):
            hf.lm_head.weight[ids[word], blocks["answer"].start + j] = \
                ANSWER / _ln_gain(6, d_model)
    hf.eval().requires_grad_(False)
    truth = {
        "task": f"answer the subject's fact: '<bos> ... subject ... {RELATION}' -> its attribute",
        "blocks": {name: [s.start, s.stop] for name, s in blocks.items()},
        "heads": {"mover": [1, 0]},
        "mlps": {"memory": 0},
        "decoys": {"mover look-alike": [1, 1]},
        "decoy mlps": {"memory look-alike": 1},
        "unused": {"heads": [[0, 0], [0, 1], [0, 2], [0, 3], [1, 2], [1, 3]]},
        "facts": FACT,
        "decodable, never read": {
            "the subject's position": "subject_position, at the last position (from L1H1)",
            "the fact again": "memory_look_alike, at the subject's position (from MLP 1)"},
        "edges": [{"from": "mlp 0", "to": [1, 0], "via": "key and value",
                   "what": "the subject's fact: the key says a subject is here, the value "
                           "carries which fact"}],
    }
    return hf, truth


def fact_prompts(batch: int = 24, seed: int = 0) -> tuple[list[str], list[str]]:
    """Prompts "fillers subject fillers ab" with their answers, all of one length (so they batch):
    every subject in turn, with three random fillers, zero to three of them before it."""
    g = torch.Generator().manual_seed(seed)
    prompts, answers = [], []
    for i in range(batch):
        subject = SUBJECTS[i % len(SUBJECTS)]
        before = int(torch.randint(0, 4, (1,), generator=g))
        fill = [FILLERS[int(j)] for j in torch.randint(0, len(FILLERS), (3,), generator=g)]
        prompts.append(" ".join(fill[:before] + [subject] + fill[before:] + [RELATION]))
        answers.append(FACT[subject])
    return prompts, answers


N_CODE = 9  # the feature block's dimensions: 32 tokens share them as two-hot codes
# the 36 pairs of 9 coordinates, less four disjoint ones, so each coordinate serves 7 or 8 tokens
CODES = [pair for pair in itertools.combinations(range(N_CODE), 2)
         if pair not in {(0, 1), (2, 3), (4, 5), (6, 7)}]  # CODES[t]: token t's coordinates
_CYCLE = [int(i) for i in torch.randperm(len(WORDS), generator=torch.Generator().manual_seed(0))]
SUCCESSOR = {WORDS[a]: WORDS[b] for a, b in zip(_CYCLE, _CYCLE[1:] + _CYCLE[:1])}  # one cycle


def _code(block: slice, t: int) -> list[int]:
    """The residual coordinates of token t's two-hot code in a block."""
    return [block.start + c for c in CODES[t]]


def build_superposition():
    """One layer. Each of the 32 tokens is a two-hot code in a 9-dimensional token block (32
    features in 9 dimensions: codes overlap in one coordinate or none), and the task is a fixed
    successor of each word, as in a chain "w SUCCESSOR[w] ...". MLP 0 is the decoder: its
    neuron t fires for token t's code alone (pre-activation 10; -10 when one coordinate is
    shared, so the nonlinearity removes the interference) and writes the successor's code into
    the answer block, where the unembedding reads codes the same way. Decoy: L0H0 is a
    previous-token head that copies the previous token's code into its own block; it is
    decodable everywhere (and, on a chain, even predicts the answer) and nothing reads it."""
    blocks, used = _blocks([("token", N_CODE), ("position", N_POS), ("previous", N_CODE),
                            ("answer", N_CODE)])
    n_heads = 4
    d_model = n_heads * D_HEAD
    assert used <= d_model and len(CODES) == N_VOCAB > N_CODE
    hf = _blank_gpt2(d_model, n_layer=1, n_inner=N_VOCAB)
    ids = {w: i + 1 for i, w in enumerate(WORDS)}
    with torch.no_grad():
        for t in range(N_VOCAB):
            hf.transformer.wte.weight[t, _code(blocks["token"], t)] = 1.0
        hf.transformer.wpe.weight[:, blocks["position"]] = torch.eye(N_POS)
        # the decoy reads three ones (the code's two, the position's one)
        _head(hf, 0, 0, blocks["position"], torch.eye(N_POS), blocks["position"],
              torch.eye(N_POS).roll(1, dims=1), blocks["token"], blocks["previous"],
              _ln_gain(3, d_model))
        # MLP 0 reads five ones: neuron t sums its two coordinates; 2 on -> 10, on + off -> -10
        on, off = _ln_on_off(5, d_model)
        w = 20.0 / (on - off)
        mlp = hf.transformer.h[0].mlp
        for t in range(N_VOCAB):
            mlp.c_fc.weight[_code(blocks["token"], t), t] = w  # Conv1D: (in, out)
            mlp.c_fc.bias[t] = 10.0 - 2 * w * on
            if t:  # <bos> has no successor
                mlp.c_proj.weight[t, _code(blocks["answer"], ids[SUCCESSOR[WORDS[t - 1]]])] = 0.1
        # the final norm sees seven ones; a word's logit is ANSWER above those sharing a coordinate
        on, off = _ln_on_off(7, d_model)
        for t in range(1, N_VOCAB):
            hf.lm_head.weight[t, _code(blocks["answer"], t)] = ANSWER / (on - off)
    hf.eval().requires_grad_(False)
    truth = {
        "task": "predict the current word's successor (a fixed cycle through the words), from "
                "32 token features stored in 9 dimensions",
        "blocks": {name: [s.start, s.stop] for name, s in blocks.items()},
        "heads": {},
        "mlps": {"successor memory": 0},
        "decoys": {"previous token look-alike": [0, 0]},
        "unused": {"heads": [[0, 1], [0, 2], [0, 3]]},
        "features": {"block": "token", "dimensions": N_CODE,
                     "codes": {tok: list(CODES[t]) for t, tok in enumerate(["<bos>"] + WORDS)},
                     "what": "token t is a 1 at both coordinates of codes[t]; the answer block "
                             "and the unembedding use the same codes"},
        "neurons": {"mlp 0, neuron t": "fires for token t's code alone, and writes its "
                                       "successor's code into the answer block"},
        "successor": SUCCESSOR,
        "decodable, never read": {
            "the previous token": "previous, at every position (from L0H0)"},
        "edges": [{"from": "embedding", "to": "mlp 0", "via": "the token block",
                   "what": "the current token's code, which each neuron decodes"},
                  {"from": "mlp 0", "to": "unembedding", "via": "the answer block",
                   "what": "the successor's code"}],
    }
    return hf, truth


def chain_prompts(batch: int = 8, length: int = 20, seed: int = 0) -> list[str]:
    """Chains "w SUCCESSOR[w] SUCCESSOR[SUCCESSOR[w]] ..." from random first words."""
    g = torch.Generator().manual_seed(seed)
    prompts = []
    for first in torch.randint(0, len(WORDS), (batch,), generator=g):
        words = [WORDS[int(first)]]
        while len(words) < length:
            words.append(SUCCESSOR[words[-1]])
        prompts.append(" ".join(words))
    return prompts


X_WORDS, Y_WORDS = WORDS[:6], WORDS[6:12]  # A .. F and G .. L: the two operands
SUMS = WORDS[12:18]  # M .. R: the answer to x_i, y_j is SUMS[(i + j) % 6]


def build_and():
    """One layer: the answer needs two tokens at once, "... x ... y ... ab" -> SUMS[(i + j) % 6]
    for x = X_WORDS[i], y = Y_WORDS[j]. L0H0 attends from the relation token to x and copies
    it into the x block; L0H1 does the same for y. MLP 0 is an AND: its neuron (i, j) fires only
    when x_i and y_j are both in the stream (pre-activation 10; -10 with one of them, so either
    head alone makes nothing fire) and writes the answer, which the unembedding reads. Decoy:
    L0H2 attends to x as L0H0 does and writes it into a block nothing reads. Each head is
    needed and neither suffices: ablating either breaks the task, while patching either one
    alone into a run on other operands restores nothing (the answer needs the other one too)."""
    blocks, used = _blocks([("token", N_VOCAB), ("position", N_POS), ("x", len(X_WORDS)),
                            ("y", len(Y_WORDS)), ("decoy_x", len(X_WORDS)),
                            ("answer", len(SUMS))])
    n_heads = 4
    d_model = n_heads * D_HEAD
    assert used <= d_model
    hf = _blank_gpt2(d_model, n_layer=1, n_inner=len(X_WORDS) * len(Y_WORDS))
    ids = {w: i + 1 for i, w in enumerate(WORDS)}
    tok = blocks["token"]
    with torch.no_grad():
        hf.transformer.wte.weight[:, tok] = torch.eye(N_VOCAB)
        hf.transformer.wpe.weight[:, blocks["position"]] = torch.eye(N_POS)
        is_relation = torch.zeros(N_VOCAB, 1)
        is_relation[ids[RELATION]] = 1.0
        gain = _ln_gain(2, d_model)  # block 0 reads two ones: token and position
        for h, words, to in ((0, X_WORDS, "x"), (1, Y_WORDS, "y"), (2, X_WORDS, "decoy_x")):
            is_word = torch.zeros(N_VOCAB, 1)
            is_word[[ids[w] for w in words]] = 1.0
            first = tok.start + ids[words[0]]  # the words' ids are consecutive
            _head(hf, 0, h, tok, is_relation, tok, is_word,
                  slice(first, first + len(words)), blocks[to], gain)
        # MLP 0 reads five ones at the relation token: token, position, x, y and the decoy's x
        on, off = _ln_on_off(5, d_model)
        w = 20.0 / (on - off)  # both on -> 10, one on -> -10
        mlp = hf.transformer.h[0].mlp
        for i, j in itertools.product(range(len(X_WORDS)), range(len(Y_WORDS))):
            n = i * len(Y_WORDS) + j
            mlp.c_fc.weight[blocks["x"].start + i, n] = w  # Conv1D: (in, out)
            mlp.c_fc.weight[blocks["y"].start + j, n] = w
            mlp.c_fc.bias[n] = 10.0 - 2 * w * on
            mlp.c_proj.weight[n, blocks["answer"].start + (i + j) % len(SUMS)] = 0.1
        # the final norm sees six ones there; answer slot k is SUMS[k]
        for k, word in enumerate(SUMS):
            hf.lm_head.weight[ids[word], blocks["answer"].start + k] = ANSWER / _ln_gain(6, d_model)
    hf.eval().requires_grad_(False)
    truth = {
        "task": f"answer from two tokens at once: '<bos> ... x ... y ... {RELATION}' -> "
                "SUMS[(i + j) % 6] for x = X_WORDS[i], y = Y_WORDS[j]",
        "blocks": {name: [s.start, s.stop] for name, s in blocks.items()},
        "heads": {"x mover": [0, 0], "y mover": [0, 1]},
        "mlps": {"and": 0},
        "decoys": {"x mover look-alike": [0, 2]},
        "unused": {"heads": [[0, 3]]},
        "and": [[[0, 0], [0, 1]]],
        "operands": {"x": X_WORDS, "y": Y_WORDS, "answers": SUMS},
        "neurons": {"mlp 0, neuron 6 i + j": "fires when x_i and y_j are both in the stream, "
                                            "and writes SUMS[(i + j) % 6]"},
        "edges": [{"from": [0, 0], "to": "mlp 0", "via": "the x block", "what": "which x"},
                  {"from": [0, 1], "to": "mlp 0", "via": "the y block", "what": "which y"},
                  {"from": "mlp 0", "to": "unembedding", "via": "the answer block",
                   "what": "the answer"}],
    }
    return hf, truth


def and_prompts(batch: int = 36, seed: int = 0) -> tuple[list[str], list[str]]:
    """Prompts "fillers x fillers y fillers ab" (x and y in either order) with their answers,
    all of one length: every pair (x, y) in turn, with two random fillers. Neighbouring prompts
    differ in both x and y, so that the other run of patching (`method_scores.resampled`, the
    batch rolled by one) has other operands, not one of them the same."""
    g = torch.Generator().manual_seed(seed)
    prompts, answers = [], []
    for n in range(batch):
        i, j = n % len(X_WORDS), (n + n // len(X_WORDS)) % len(Y_WORDS)  # all 36 pairs
        words = [FILLERS[int(k)] for k in torch.randint(0, len(FILLERS), (2,), generator=g)]
        for word in (X_WORDS[i], Y_WORDS[j]):
            words.insert(int(torch.randint(0, len(words) + 1, (1,), generator=g)), word)
        prompts.append(" ".join(words + [RELATION]))
        answers.append(SUMS[(i + j) % len(SUMS)])
    return prompts, answers


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
            "redundant": lambda: build_induction(redundant=True),
            "fact-lookup": build_fact_lookup,
            "superposition": build_superposition,
            "and": build_and}


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
