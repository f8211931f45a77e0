"""Chapter 00's checks pass the solution, fail the stub, and name the mistake in wrong answers."""

import torch

from mechinterp_course.checks import ch00
from notebooks import exercise_functions, fails_with

NB = "00_forward_pass.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


# --- 0.1 logits from the residual stream ---------------------------------------------------

def test_logits_from_resid(course_model, capsys):
    ch00.check_logits_from_resid(SOLUTION["logits_from_resid"], course_model)
    assert "passed" in capsys.readouterr().out
    check = ch00.check_logits_from_resid
    fails_with(check, STUB["logits_from_resid"], course_model, "not done yet")
    fails_with(check, lambda m, r: r @ m.W_U + m.b_U, course_model, "without the final norm")
    fails_with(check, lambda m, r: (m.parts["ln_final"](r) @ m.W_U).softmax(-1), course_model,
               "probabilities")
    # W_E is tied to W_U in GPT-2, so this bug shows only on the second (Llama) architecture
    fails_with(check, lambda m, r: m.parts["ln_final"](r) @ m.W_E.T, course_model, "use W_U")
    fails_with(check, lambda m, r: (m.parts["ln_final"](r) @ m.W_U)[:, -1], course_model,
               "has shape")
    fails_with(check, lambda m, r: r.nonexistent, course_model, "raised AttributeError")
    fails_with(check, lambda m, r: torch.full(r.shape[:-1] + (m.cfg.d_vocab,), float("nan")),
               course_model, "NaN")
    fails_with(check, lambda m, r: (m.parts["ln_final"](r) @ m.W_U).to("meta"), course_model,
               "is on meta")


# --- 0.2 greedy decoding -------------------------------------------------------------------

def test_greedy_generate(course_model):
    ch00.check_greedy_generate(SOLUTION["greedy_generate"], course_model)
    check = ch00.check_greedy_generate
    fails_with(check, STUB["greedy_generate"], course_model, "not done yet")

    def off_by_one(model, tokens, n_new):
        for _ in range(n_new - 1):
            tokens = torch.cat([tokens, model(tokens)[:, -1].argmax(-1, keepdim=True)], 1)
        return tokens
    fails_with(check, off_by_one, course_model, "off-by-one")

    def first_position(model, tokens, n_new):
        for _ in range(n_new):
            tokens = torch.cat([tokens, model(tokens)[:, 0].argmax(-1, keepdim=True)], 1)
        return tokens
    fails_with(check, first_position, course_model, "position 0")

    def never_fed_back(model, tokens, n_new):
        nxt = model(tokens)[:, -1].argmax(-1, keepdim=True)
        return torch.cat([tokens, nxt.repeat(1, n_new)], 1)
    fails_with(check, never_fed_back, course_model, "feed the growing sequence back")


# --- 0.3 temperature, top-k, top-p -----------------------------------------------------------

def test_next_token_probs(course_model):
    ch00.check_next_token_probs(SOLUTION["next_token_probs"], course_model)
    check = ch00.check_next_token_probs
    right = SOLUTION["next_token_probs"]
    fails_with(check, STUB["next_token_probs"], course_model, "not done yet")
    fails_with(check, lambda lg, temperature=1.0, top_k=None, top_p=None:
               right(lg * temperature ** 2, temperature, top_k, top_p), course_model,
               "divide by it")
    fails_with(check, lambda lg, temperature=1.0, top_k=None, top_p=None:
               (lg / temperature).softmax(0), course_model, "batch axis")

    def top_p_first(lg, temperature=1.0, top_k=None, top_p=None):
        from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper
        scores = lg.clone()
        if top_k is not None:
            scores = TopKLogitsWarper(top_k)(None, scores)
        if top_p is not None:
            scores = TopPLogitsWarper(top_p)(None, scores)
        return (scores / temperature).softmax(-1)
    fails_with(check, top_p_first, course_model, "before the temperature")
    fails_with(check, lambda lg, temperature=1.0, top_k=None, top_p=None:
               right(lg, temperature, None if top_k is None else top_k + 1, top_p),
               course_model, "one token too many")

    def drops_crossing_token(lg, temperature=1.0, top_k=None, top_p=None):
        probs = right(lg, temperature, top_k, None)
        if top_p is None:
            return probs
        sorted_p, order = probs.sort(-1, descending=True)
        keep = sorted_p.cumsum(-1) < top_p
        keep[..., 0] = True
        keep = keep.scatter(-1, order, keep)
        probs = probs * keep
        return probs / probs.sum(-1, keepdim=True)
    fails_with(check, drops_crossing_token, course_model, "crosses top_p")

    def not_renormalised(lg, temperature=1.0, top_k=None, top_p=None):
        probs = (lg / temperature).softmax(-1)
        if top_k is not None:
            kth = probs.topk(top_k, -1).values[..., -1:]
            probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
        return probs
    fails_with(check, not_renormalised, course_model, "renormalise")


def test_next_token_loss(course_model):
    import torch.nn.functional as F

    from mechinterp_course import evaluate
    from mechinterp_course.checks import ch00
    check = ch00.check_next_token_loss
    check(SOLUTION["next_token_loss"], course_model)
    check(evaluate.next_token_loss, course_model)
    check(lambda lg, t: F.cross_entropy(lg[:, :-1].transpose(1, 2), t[:, 1:]), course_model)
    fails_with(check, STUB["next_token_loss"], course_model, "not done yet")
    fails_with(check, lambda lg, t: F.cross_entropy(lg.flatten(0, 1), t.flatten()), course_model,
               "No shift")
    fails_with(check, lambda lg, t: F.cross_entropy(lg[:, 1:].flatten(0, 1), t[:, :-1].flatten()),
               course_model, "wrong way")
    fails_with(check, lambda lg, t: F.cross_entropy(lg[:, :-1].flatten(0, 1), t[:, 1:].flatten(),
                                                    reduction="sum"), course_model, "summed")
    fails_with(check, lambda lg, t: -lg[:, :-1].gather(-1, t[:, 1:, None]).mean(), course_model,
               "log_softmax first")
    fails_with(check, lambda lg, t: -lg.log_softmax(1)[:, :-1].gather(-1, t[:, 1:, None]).mean(),
               course_model, "over the positions")
    fails_with(check, lambda lg, t: None, course_model, "torch.Tensor")


def test_the_loss_reference_is_transformers_own(course_model):
    from mechinterp_course import evaluate

    tokens = course_model.to_tokens("The capital of Texas is Austin.")
    hf = course_model.hf(tokens, labels=tokens).loss
    assert torch.allclose(evaluate.next_token_loss(course_model(tokens), tokens), hf, atol=1e-5)


def test_open_knowledge_design(course_model):
    from mechinterp_course import claims
    from mechinterp_course.checks import design as design_check

    check = ch00.check_knowledge_design
    design_check._shown.pop("Exercise 0.5", None)
    assert check(SOLUTION["knowledge_design"], course_model).passed
    fails_with(check, STUB["knowledge_design"], course_model, "not done yet")
    measure = SOLUTION["answer_probability"]

    def design(control=("another capital", ()), measure=measure, threshold=0.5):
        return lambda: claims.Design(
            claims.Claim("It knows", "probability", threshold, "another capital"),
            effect=claims.Site("capital", ()),
            control=None if control is None else claims.Site(*control), measure=measure)

    fails_with(check, design(control=None), course_model, "no control")
    fails_with(check, design(control=("another capital", (3,))), course_model, "not matched")
    fails_with(check, design(measure=lambda site, s: torch.full((s.n,), 0.9 * (
        site.component == "capital"))), course_model, "untrained model")
    fails_with(check, design(measure=lambda site, s: measure(site, claims.Sample(
        course_model, s.data, "", s.n))), course_model, "sample.model")
    fails_with(check, design(threshold=0.9), course_model, "differs from the one")
    design_check._shown.pop("Exercise 0.5", None)
