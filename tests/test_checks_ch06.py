"""Chapter 06's checks pass the solution, fail the stub, and name the mistake in wrong answers;
the SAE helpers do what they say."""

import torch

from mechinterp_course import sae
from notebooks import exercise_functions, fails_with

NB = "06_sparse_autoencoders.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def test_encode():
    from mechinterp_course.checks import ch06
    check = ch06.check_encode
    check(SOLUTION["encode"], None)
    fails_with(check, STUB["encode"], None, "not done yet")

    def pre(x, W, b, bd):
        return (x - bd) @ W + b

    def topk_with(select, relu=True):
        def fn(x, W, b, bd, k=None):
            p = pre(x, W, b, bd)
            if k is None:
                return torch.relu(p)
            idx = select(p, k)
            vals = p.gather(-1, idx)
            return torch.zeros_like(p).scatter(-1, idx, torch.relu(vals) if relu else vals)
        return fn
    fails_with(check, lambda x, W, b, bd, k=None: pre(x, W, b, bd), None, "No ReLU")
    fails_with(check, lambda x, W, b, bd, k=None: torch.relu(x @ W + b) if k is None
               else sae.encode(x, W, b, bd, k), None, "b_dec")
    fails_with(check, lambda x, W, b, bd, k=None: torch.relu(pre(x, W, b, bd)), None,
               "kept all latents")
    fails_with(check, topk_with(lambda p, k: p.topk(k, largest=False).indices), None,
               "k smallest")
    fails_with(check, topk_with(lambda p, k: p.abs().topk(k).indices), None, "absolute value")
    fails_with(check, topk_with(lambda p, k: p.topk(k).indices, relu=False), None, "ReLU too")


def test_l1_loss():
    from mechinterp_course.checks import ch06
    check = ch06.check_l1_loss
    check(SOLUTION["l1_loss"], None)
    fails_with(check, STUB["l1_loss"], None, "not done yet")

    def mse(x, y):
        return (y - x).pow(2).sum(-1).mean()
    fails_with(check, lambda x, y, f, W, c: mse(x, y) + c * f.sum(-1).mean(), None,
               "decoder norms")
    fails_with(check, lambda x, y, f, W, c: (y - x).pow(2).mean()
               + c * (f * W.norm(dim=1)).sum(-1).mean(), None, "averaged over d_in")
    fails_with(check, lambda x, y, f, W, c: mse(x, y)
               + c * (f * W.norm(dim=1)).pow(2).sum(-1).mean(), None, "L2")
    fails_with(check, lambda x, y, f, W, c: mse(x, y) + c * (f * W.norm(dim=1)).sum(), None,
               "summed over the batch")


def test_metrics():
    from mechinterp_course.checks import ch06
    check = ch06.check_metrics
    check(SOLUTION["sae_metrics"], None)
    fails_with(check, STUB["sae_metrics"], None, "not done yet")
    good = SOLUTION["sae_metrics"]

    def replace(i, value_fn):
        def fn(x, y, f):
            out = list(good(x, y, f))
            out[i] = value_fn(x, y, f)
            return tuple(out)
        return fn
    fails_with(check, replace(0, lambda x, y, f: 1 - (x - y).pow(2).sum() / x.pow(2).sum()),
               None, "not centred")
    fails_with(check, replace(0, lambda x, y, f: (x - y).pow(2).sum()
                              / (x - x.mean(0)).pow(2).sum()), None, "unexplained")
    fails_with(check, replace(1, lambda x, y, f: (f != 0).float().mean()), None, "fraction")
    fails_with(check, replace(1, lambda x, y, f: f.sum(-1).mean()), None, "L1 norm")
    fails_with(check, replace(1, lambda x, y, f: f.mean()), None, "mean of the activations")
    fails_with(check, replace(0, lambda x, y, f: 1 - (x - y).pow(2).sum()
                              / (x - x.mean(1, keepdim=True)).pow(2).sum()), None, "wrong axis")
    fails_with(check, replace(0, lambda x, y, f: 1 - (x - y).pow(2).sum()
                              / (x - x.mean()).pow(2).sum()), None, "one overall mean")
    fails_with(check, replace(2, lambda x, y, f: (f == 0).any(0).float().mean()), None,
               "every")
    fails_with(check, replace(2, lambda x, y, f: (f != 0).sum(0).eq(0).float().sum()), None,
               "divide by d_sae")
    fails_with(check, lambda x, y, f: good(x, y, f)[:2], None, "triple")


def test_train_step():
    from mechinterp_course.checks import ch06
    check = ch06.check_train_step
    check(SOLUTION["train_step"], None)
    fails_with(check, STUB["train_step"], None, "not done yet")

    def step(zero_grad=True, renorm=True, order_ok=True, topk_l1=False):
        def fn(s, opt, x, c):
            x_hat, f = s(x)
            loss = (sae.l1_loss(x, x_hat, f, s.W_dec, c) if s.k is None or topk_l1
                    else (x_hat - x).pow(2).sum(-1).mean())
            if zero_grad:
                opt.zero_grad()
            if order_ok:
                loss.backward()
                opt.step()
            else:
                opt.step()
                loss.backward()
            if s.k is None and renorm:
                with torch.no_grad():
                    s.W_dec /= s.W_dec.norm(dim=1, keepdim=True)
            return loss.detach()
        return fn
    fails_with(check, step(zero_grad=False), None, "zero_grad")
    fails_with(check, step(renorm=False), None, "unit norm")
    fails_with(check, step(order_ok=False), None, "before loss.backward")
    fails_with(check, step(topk_l1=True), None, "first loss")


def test_sae_recovers_known_features():
    features = sae.synthetic_features(32, 16, seed=0)
    model = sae.SAE(16, 64, k=3, seed=0)
    result = sae.train(model, sae.synthetic_batches(features, 256, active=2, seed=1), steps=800,
                       lr=3e-3, progress=False)
    assert sae.mean_max_cosine(model.W_dec.detach(), features) > 0.9
    assert result.l0 == 3.0 and 0 < result.fve <= 1


def test_metrics_on_known_cases():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert sae.fraction_of_variance_explained(x, x) == 1.0
    assert abs(float(sae.fraction_of_variance_explained(x, x.mean(0).expand_as(x)))) < 1e-6
    f = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    assert sae.mean_l0(f) == 1.5 and abs(float(sae.dead_fraction(f)) - 1 / 3) < 1e-6
    assert sae.mean_max_cosine(torch.eye(3), torch.eye(3)[:2] * 5) == 1.0


def test_collected_activations_are_the_model_s_and_reused(course_model, tmp_path):
    path = tmp_path / "acts.bin"
    acts = sae.collect_activations(course_model, ("resid_post", 0), path, n_tokens=600,
                                   rows=2, progress=False)
    assert acts.shape == (600, course_model.cfg.d_model) and torch.isfinite(acts).all()
    stamp = path.stat().st_mtime_ns
    again = sae.collect_activations(course_model, ("resid_post", 0), path, n_tokens=600,
                                    rows=2, progress=False)
    assert path.stat().st_mtime_ns == stamp and torch.equal(acts, again)
    # the first row's activations, skipping its first position, are the model's own
    import numpy as np
    rng = np.random.default_rng(1)
    from mechinterp_course import world
    ids = []
    while len(ids) < course_model.cfg.n_ctx:
        text = world.sample_document(rng).text
        ids += [course_model.tokenizer.eos_token_id] + course_model.tokenizer(
            text, add_special_tokens=False)["input_ids"]
    tokens = torch.tensor(ids[: course_model.cfg.n_ctx])[None]
    _, cache = course_model.run_with_cache(tokens, names=[("resid_post", 0)])
    assert torch.allclose(acts[:10], cache["resid_post", 0][0, 1:11], atol=1e-5)
    # other weights under the same name (a retrained model) are not served the stored file
    wte = course_model.hf.get_input_embeddings().weight
    original, before = wte.detach().clone(), acts[:10].clone()  # acts maps the file
    try:
        with torch.no_grad():
            wte.mul_(2.0)
        changed = sae.collect_activations(course_model, ("resid_post", 0), path, n_tokens=600,
                                          rows=2, progress=False)
        assert path.stat().st_mtime_ns != stamp and not torch.allclose(changed[:10], before)
    finally:
        with torch.no_grad():
            wte.copy_(original)


def test_collected_activations_take_the_site_s_own_width(course_model, tmp_path):
    # MLP neurons are wider than the residual stream; they used to be reshaped into d_model rows
    import pytest
    acts = sae.collect_activations(course_model, ("mlp_post", 1), tmp_path / "mlp.bin",
                                   n_tokens=300, rows=2, progress=False)
    assert acts.shape == (300, course_model.cfg.d_mlp)
    assert acts.abs().amax(0).gt(0).sum() > course_model.cfg.d_model  # every neuron has a column
    with pytest.raises(ValueError, match="one vector per token"):
        sae.collect_activations(course_model, ("pattern", 0), tmp_path / "p.bin", n_tokens=10,
                                rows=1, progress=False)
    assert not (tmp_path / "p.bin").exists()


def test_splicing_a_perfect_reconstruction_recovers_everything(course_model):
    class Identity(sae.SAE):
        def forward(self, x):
            return x, x
    perfect = Identity(course_model.cfg.d_model, 8)
    tokens = course_model.to_tokens(["The capital of Texas is Austin.", "def add(x, y):"])
    out = sae.loss_recovered(course_model, perfect, ("resid_post", 1), tokens)
    assert abs(out["recovered"] - 1) < 1e-5 and out["zero"] > out["clean"]


def test_spliced_loss(course_model):
    from mechinterp_course.checks import ch06
    check = ch06.check_spliced_loss
    check(SOLUTION["spliced_loss"], course_model)
    fails_with(check, STUB["spliced_loss"], course_model, "not done yet")

    def make(hook_returns=True, shift=True, zero=False):
        def fn(model, s, site, tokens):
            def hook(x):
                if zero:
                    return torch.zeros_like(x)
                return s(x)[0] if hook_returns else None
            with torch.no_grad(), model.hooks({site: hook}):
                logits = model(tokens)
            if shift:
                lp = logits[:, :-1].log_softmax(-1)
                return -lp.gather(-1, tokens[:, 1:, None]).mean()
            return -logits.log_softmax(-1).gather(-1, tokens[..., None]).mean()
        return fn
    fails_with(check, make(hook_returns=False), course_model, "clean model")
    fails_with(check, make(shift=False), course_model, "not shifted")
    fails_with(check, make(zero=True), course_model, "zero-ablation")
    fails_with(check, lambda m, s, site, t: make()(m, s, site, t[:, :3]), course_model,
               "differs")


def test_mean_max_cosine():
    from mechinterp_course.checks import ch06
    check = ch06.check_mean_max_cosine

    def unit(x):
        return x / x.norm(dim=1, keepdim=True)

    check(SOLUTION["mean_max_cosine"], None)
    check(sae.mean_max_cosine, None)
    check(lambda a, b: torch.nn.functional.cosine_similarity(b[:, None], a[None], dim=-1)
          .max(1).values.mean(), None)  # another way to the same number
    fails_with(check, STUB["mean_max_cosine"], None, "not done yet")
    fails_with(check, lambda a, b: (unit(a) @ unit(b).T).max(1).values.mean(), None,
               "each \\*learned\\*")
    fails_with(check, lambda a, b: (b @ a.T).max(1).values.mean(), None, "dot products")
    fails_with(check, lambda a, b: (unit(b) @ unit(a).T).mean(), None, "every pair")
    fails_with(check, lambda a, b: (unit(b) @ unit(a).T).max(1).values, None, "shape")
    fails_with(check, lambda a, b: None, None, "torch.Tensor")
