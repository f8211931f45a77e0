"""Chapter 11's checks pass the solution and other correct answers, fail the stub, and name the
mistake in wrong answers without showing the reference."""

import torch

from mechinterp_course import interventions, steering
from mechinterp_course.checks import ExerciseFailed, ch11
from notebooks import exercise_functions, fails_with

NB = "11_steering.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def _vector_learner(mistake=None):
    """The steering vector as a learner might write it, one prompt at a time."""
    def fn(model, positive, negative, layer):
        means = []
        for texts in (positive, negative):
            acts = []
            for text in texts:
                tokens = model.to_tokens(text)
                name = ("resid_post" if mistake == "post" else "resid_pre", layer)
                _, cache = model.run_with_cache(tokens, names=[name])
                x = cache[name][0]  # (pos, d_model)
                acts.append(x.mean(0) if mistake == "all positions" else x[-1])
            means.append(torch.stack(acts).mean(0))
        if mistake == "positive only":
            return means[0]
        v = means[1] - means[0] if mistake == "reversed" else means[0] - means[1]
        return v / v.norm() if mistake == "normalised" else v
    return fn


def test_steering_vector(course_model):
    check = ch11.check_steering_vector
    check(SOLUTION["steering_vector"], course_model)
    check(_vector_learner(), course_model)  # one prompt at a time: another correct answer
    check(lambda m, p, n, layer: steering.mean_difference(m, p, n, layer), course_model)
    fails_with(check, STUB["steering_vector"], course_model, "not done yet")
    fails_with(check, _vector_learner("reversed"), course_model, "wrong way")
    fails_with(check, _vector_learner("post"), course_model, "resid_post")
    fails_with(check, _vector_learner("all positions"), course_model, "every position of each")
    fails_with(check, _vector_learner("normalised"), course_model, "norm 1")
    fails_with(check, _vector_learner("positive only"), course_model, "positive prompts' mean")

    def padded_column(m, p, n, layer):
        out = []
        for texts in (p, n):
            _, cache = m.run_with_cache(m.to_tokens(texts), names=[("resid_pre", layer)])
            out.append(cache["resid_pre", layer][:, -1].mean(0))
        return out[0] - out[1]
    fails_with(check, padded_column, course_model, "last column of the padded batch")
    fails_with(check, lambda m, p, n, layer: steering.mean_difference(m, p, n, 0), course_model,
               "use the argument")
    fails_with(check, lambda m, p, n, layer: None, course_model, "Tensor")
    fails_with(check, lambda m, p, n, layer: steering.mean_difference(m, p, n, layer) * torch.nan,
               course_model, "NaN")
    fails_with(check, lambda m, p, n, layer: steering.mean_difference(m, p, n, layer).double(),
               course_model, "dtype|float")


def _steer_learner(mistake=None):
    """Steering as a learner might write it, with steering.steering_hooks or by hand."""
    def fn(model, tokens, last, vector, layer, strength):
        if mistake is None:
            with torch.no_grad(), model.hooks(steering.steering_hooks(vector, layer, last,
                                                                      strength)):
                return model(tokens)[torch.arange(len(tokens)), last]

        def add(x):
            if mistake == "every position":
                return x + strength * vector
            if mistake == "no copy":
                y = x.clone()
                y[torch.arange(len(x)), last] += strength * vector
                return x  # returned the unchanged activation
            x = x.clone()
            if mistake == "column":
                x[:, -1] += strength * vector
            else:
                x[torch.arange(len(x)), last] += (1.0 if mistake == "strength" else strength) \
                    * vector * (-1 if mistake == "subtract" else 1)
            return x
        name = ("resid_post" if mistake == "post" else "resid_pre", layer)
        with torch.no_grad(), model.hooks({name: add}):
            logits = model(tokens)
        if mistake == "read column":
            return logits[:, -1]
        if mistake == "all logits":
            return logits
        return logits[torch.arange(len(tokens)), last]
    return fn


def test_steered_logits(course_model):
    check = ch11.check_steered_logits
    check(SOLUTION["steered_logits"], course_model)
    check(_steer_learner(), course_model)  # with the package's hooks: another correct answer
    fails_with(check, STUB["steered_logits"], course_model, "not done yet")
    fails_with(check, _steer_learner("every position"), course_model, "every position")
    fails_with(check, _steer_learner("column"), course_model, "added the vector at the last col")
    fails_with(check, _steer_learner("read column"), course_model, "read the logits at the last")
    fails_with(check, _steer_learner("no copy"), course_model, "without steering")
    fails_with(check, _steer_learner("strength"), course_model, "ignored `strength`")
    fails_with(check, _steer_learner("subtract"), course_model, "subtracted")
    fails_with(check, _steer_learner("post"), course_model, "resid_post")
    fails_with(check, _steer_learner("all logits"), course_model, r"\(n, pos, d_vocab\)")
    fails_with(check, lambda *a: None, course_model, "Tensor")
    fails_with(check, lambda *a: _steer_learner()(*a).log_softmax(-1), course_model,
               "log-probabilities")
    fails_with(check, lambda *a: _steer_learner()(*a).half(), course_model, "dtype|float")


def test_a_failed_check_does_not_show_the_reference(course_model):
    """The messages name the mistake; none prints the expected values."""
    for check, wrong in [(ch11.check_steering_vector, _vector_learner("reversed")),
                         (ch11.check_steering_vector, lambda m, p, n, layer: torch.zeros(
                             m.cfg.d_model)),
                         (ch11.check_steered_logits, _steer_learner("every position"))]:
        try:
            check(wrong, course_model)
        except ExerciseFailed as failed:
            assert "tensor(" not in str(failed) and "[" not in str(failed), str(failed)
        else:
            raise AssertionError("the check passed a wrong answer")


def test_remove_direction(course_model):
    check = ch11.check_remove_direction
    check(SOLUTION["remove_direction"], course_model)
    check(lambda x, d: interventions.project_out(d[None])(x), course_model)  # for k directions
    check(lambda x, d: x - torch.outer((x.reshape(-1, len(d)) @ d) / (d @ d), d).reshape(x.shape),
          course_model)
    fails_with(check, STUB["remove_direction"], course_model, "not done yet")
    fails_with(check, lambda x, d: x - (x @ d)[..., None] * d, course_model, "not normalised")
    fails_with(check, lambda x, d: (x @ (d / d.norm()))[..., None] * d / d.norm(), course_model,
               "part to remove")
    fails_with(check, lambda x, d: x + (x @ (d / d.norm()))[..., None] * d / d.norm(),
               course_model, "added the component")
    fails_with(check, lambda x, d: x - (x @ d)[..., None] * d / d.norm(), course_model,
               "once, not twice")
    fails_with(check, lambda x, d: x - (x @ d / d.norm())[..., None], course_model,
               "differs")  # a scalar taken off every coordinate
    fails_with(check, lambda x, d: None, course_model, "Tensor")
    fails_with(check, lambda x, d: (x - (x @ (d / d.norm()))[..., None] * d / d.norm()).double(),
               course_model, "dtype|float")



def test_random_directions():
    from mechinterp_course import claims
    check = ch11.check_random_directions

    def unit(r):
        return r / r.norm(dim=-1, keepdim=True)

    check(SOLUTION["random_directions"], None)
    check(claims.random_directions, None)
    check(lambda n, like, g: torch.nn.functional.normalize(  # an equivalent rewrite
        torch.randn(n, like.shape[-1], generator=g), dim=-1) * like.norm(), None)
    fails_with(check, STUB["random_directions"], None, "not done yet")
    fails_with(check, lambda n, like, g: torch.randn(n, like.shape[-1], generator=g), None,
               "should be like's")
    fails_with(check, lambda n, like, g: unit(torch.randn(n, like.shape[-1], generator=g)),
               None, "should be like's")
    fails_with(check, lambda n, like, g: unit(like + 0.05 * torch.randn(
        n, like.shape[-1], generator=g)) * like.norm(), None, "lean toward")
    fails_with(check, lambda n, like, g: claims.random_directions(1, like, g).expand(n, -1),
               None, "repeat")
    fails_with(check, lambda n, like, g: claims.random_directions(n, like, torch.Generator()
                                                                 .manual_seed(3)), None,
               "generator you are given")
    fails_with(check, lambda n, like, g: claims.random_directions(n, like, g).double(), None,
               "dtype")
    fails_with(check, lambda n, like, g: None, None, "torch.Tensor")
