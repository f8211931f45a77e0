"""Chapter 08's checks pass the solution, fail the stub, and name the mistake in wrong answers;
and the claims helpers do what they say."""

import torch

from mechinterp_course import claims
from notebooks import exercise_functions, fails_with

NB = "08_capstone.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def _bootstrap(resample, tails=None, spread=False, seeding="seed"):
    """A bootstrap written by a learner; tails fixed (ignoring level) when given; seeding:
    "seed" (the argument), "constant" (always 0) or "global" (torch's global generator)."""
    def fn(values, n_boot=2000, level=0.95, seed=0):
        if seeding == "global":
            g = None
        else:
            g = torch.Generator().manual_seed(seed if seeding == "seed" else 0)
        idx = resample(len(values), n_boot, g)
        tails_ = tails or ((1 - level) / 2, 1 - (1 - level) / 2)
        means = values[idx].mean(1)
        if spread:  # the values' own quantiles, not the means'
            low, high = torch.quantile(values.float(), torch.tensor(list(tails_)))
        else:
            low, high = torch.quantile(means, torch.tensor(list(tails_)))
        return float(values.mean()), float(low), float(high)
    return fn


def with_replacement(n, n_boot, g):
    return torch.randint(0, n, (n_boot, n), generator=g)


def without_replacement(n, n_boot, g):
    return torch.stack([torch.randperm(n, generator=g) for _ in range(n_boot)])


def test_bootstrap_ci(course_model):
    from mechinterp_course.checks import ch08
    check = ch08.check_bootstrap_ci
    check(SOLUTION["bootstrap_ci"], course_model)
    check(_bootstrap(with_replacement), course_model)  # another correct answer
    fails_with(check, STUB["bootstrap_ci"], course_model, "not done yet")
    fails_with(check, _bootstrap(without_replacement), course_model, "without\\* replacement")
    fails_with(check, _bootstrap(with_replacement, tails=(0.05, 0.95)), course_model, "90%")
    fails_with(check, _bootstrap(with_replacement, spread=True), course_model, "too wide")
    fails_with(check, _bootstrap(with_replacement, tails=(0.975, 0.025)), course_model,
               "above high")
    fails_with(check, lambda v, n_boot=0, level=0, seed=0: float(v.mean()), course_model,
               "three numbers")
    fails_with(check, lambda v, n_boot=0, level=0, seed=0: (0.0, -1.0, 1.0), course_model,
               "width zero")
    fails_with(check, _bootstrap(with_replacement, tails=(0.025, 0.975)), course_model,
               "level argument")
    fails_with(check, _bootstrap(with_replacement, seeding="constant"), course_model,
               "seed argument is ignored")
    fails_with(check, _bootstrap(with_replacement, seeding="global"), course_model,
               "same seed gave two")
    fails_with(check, lambda v, n_boot=0, level=0, seed=0: None, course_model, "three numbers")
    fails_with(check, lambda v, n_boot=0, level=0, seed=0: (float("nan"),) * 3, course_model,
               "is nan")


def test_passes(course_model):
    from mechinterp_course.checks import ch08
    check = ch08.check_passes
    check(SOLUTION["passes"], course_model)
    fails_with(check, STUB["passes"], course_model, "not done yet")
    fails_with(check, lambda e, c, t: e[0] >= t and c[0] < t, course_model, "not its mean")
    fails_with(check, lambda e, c, t: e[1] >= t, course_model, "ignored the control")
    fails_with(check, lambda e, c, t: e[1] >= t and c[0] < t, course_model, "upper\\* bound")
    fails_with(check, lambda e, c, t: e[2] >= t and c[2] < t, course_model, "upper bound")
    fails_with(check, lambda e, c, t: e[1] > t and c[2] < t, course_model, "low >= threshold")
    fails_with(check, lambda e, c, t: e[1] >= t and c[2] <= t, course_model,
               "control high < threshold")
    fails_with(check, lambda e, c, t: "yes", course_model, "True or False")


def test_bootstrap_interval_covers_the_true_mean():
    """Over many samples from a known distribution, a 95% interval holds the true mean about
    95% of the time (a loose bound: 100 samples)."""
    g = torch.Generator().manual_seed(0)
    hits = 0
    for i in range(100):
        sample = torch.randn(60, generator=g) + 2.0
        interval = claims.bootstrap_ci(sample, n_boot=500, seed=i)
        hits += interval.low <= 2.0 <= interval.high
        assert interval.low < interval.mean < interval.high
    assert 85 <= hits <= 100


def test_cluster_bootstrap_is_wider_when_tokens_are_clustered():
    """Tokens that copy their document's value carry no extra evidence: resampling documents
    gives the width of a sample of documents, not of tokens."""
    g = torch.Generator().manual_seed(0)
    doc_values = torch.randn(30, generator=g)
    groups = torch.arange(30).repeat_interleave(20)
    values = doc_values[groups]
    by_docs = claims.cluster_bootstrap_ci(lambda idx: float(values[idx].mean()), groups,
                                          n_boot=300)
    by_tokens = claims.bootstrap_ci(values, n_boot=300)
    naive_docs = claims.bootstrap_ci(doc_values, n_boot=300)
    width = lambda i: i.high - i.low  # noqa: E731
    assert width(by_docs) > 3 * width(by_tokens)
    assert 0.7 < width(by_docs) / width(naive_docs) < 1.4


def test_verdicts_and_report():
    claim = claims.Claim("a claim", "a metric", 0.5, "a control")
    passed = claims.judge(claim, (0.9, 0.8, 1.0), (0.1, 0.0, 0.2))
    failed = claims.judge(claim, (0.6, 0.4, 0.8), (0.1, 0.0, 0.2))
    assert passed.passed and not failed.passed
    table = claims.report([passed, failed])
    assert "PASS" in table and "FAIL" in table and "0.90 [0.80, 1.00]" in table


def test_project_check_refuses_a_claim_without_control_or_with_a_later_threshold(course_model):
    """Exercise 8.3: the capstone's check passes the solution (a sound design with a negative
    verdict), fails the stub, refuses a claim with no control, and refuses the same claim with
    its threshold moved after the verdict was shown."""
    from dataclasses import replace

    from mechinterp_course.checks import ch08
    from mechinterp_course.checks import design as design_check
    from notebooks import fails_with as refused

    check = ch08.check_project
    design_check._shown.pop("Exercise 8.3", None)
    verdict = check(SOLUTION["my_claim"], course_model)
    assert not verdict.passed and verdict.excess.high < 0
    refused(check, STUB["my_claim"], course_model, "not done yet")
    solution = SOLUTION["my_claim"]
    refused(check, lambda: replace(solution(), control=None), course_model, "no control")
    refused(check, lambda: replace(solution(), claim=replace(solution().claim, control="")),
            course_model, "no control")
    moved = replace(solution().claim, threshold=verdict.effect.low - 0.01)  # to pass, post hoc
    refused(check, lambda: replace(solution(), claim=moved), course_model, "differs from the one")
    design_check._shown.pop("Exercise 8.3", None)


def test_holm():
    from mechinterp_course.checks import ch08
    check = ch08.check_holm
    check(SOLUTION["holm"], None)
    check(claims.holm, None)
    check(lambda p, a: torch.tensor(claims.holm(p, a)), None)  # a tensor of bools will do
    fails_with(check, STUB["holm"], None, "not done yet")
    fails_with(check, lambda p, a: [x <= a / len(p) for x in p], None, "Bonferroni")
    fails_with(check, lambda p, a: ch08._holm_like(p, a, lambda r, m: 1 / (m - r), stop=False),
               None, "after the first failure")
    fails_with(check, lambda p, a: ch08._holm_like(p, a, lambda r, m: 1 / max(m - r - 1, 1)),
               None, "Off by one")
    fails_with(check, lambda p, a: sorted(claims.holm(p, a), reverse=True), None, "sorted")
    fails_with(check, lambda p, a: [int(x) for x in claims.holm(p, a)], None, "True/False")
    fails_with(check, lambda p, a: [x <= a for x in p], None, "against alpha itself")


def test_cluster_bootstrap():
    from mechinterp_course.checks import ch08
    check = ch08.check_cluster_bootstrap

    def written(unit="groups", per_group_value=False, seeded=True):
        def fn(statistic, groups, n_boot, level, seed):
            g = torch.Generator().manual_seed(seed) if seeded else None
            ids = groups.unique()
            members = [torch.nonzero(groups == i).flatten() for i in ids]
            stats = []
            for _ in range(n_boot):
                if unit == "items":
                    idx = torch.randint(0, len(groups), (len(groups),), generator=g)
                else:
                    pick = torch.randint(0, len(ids), (len(ids),), generator=g)
                    idx = torch.cat([members[int(i)] for i in pick])
                stats.append(statistic(idx))
            low, high = torch.quantile(torch.tensor(stats), torch.tensor(
                [(1 - level) / 2, (1 + level) / 2])).tolist()
            value = (sum(statistic(m) for m in members) / len(members) if per_group_value
                     else statistic(torch.arange(len(groups))))
            return value, low, high
        return fn

    check(SOLUTION["cluster_bootstrap"], None)
    check(claims.cluster_bootstrap_ci, None)
    check(written(), None)
    fails_with(check, STUB["cluster_bootstrap"], None, "not done yet")
    fails_with(check, written(unit="items"), None, "resample of items")
    fails_with(check, written(per_group_value=True), None, "groups' means")
    fails_with(check, written(seeded=False), None, "same seed")
    fails_with(check, lambda s, g, n, level, seed: None, None, "three numbers")
