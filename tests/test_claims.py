"""The claims module refuses the mistakes chapter 08 teaches against: an unmatched control, a
control that is as large as the effect, and many claims judged at one claim's confidence."""

import pytest
import torch

from mechinterp_course import claims

CLAIM = claims.Claim("MLP 0 recalls it", "share restored", 0.5, "attention at the same place")
MLP0 = claims.Site("mlp_out", (0,), (4, 5))


@pytest.mark.parametrize("control, problem", [
    (claims.Site("attn_out", (0,), (4,)), "positions"),          # the chapter's old control
    (claims.Site("attn_out", (1,), (4, 5)), "layers"),
    (claims.Site("attn_out", (0,), (4, 5), count=2), "components"),
    (claims.Site("mlp_out", (0,), (4, 5)), "both act on"),
])
def test_unmatched_controls_are_refused(control, problem):
    with pytest.raises(claims.UnmatchedControl, match=problem):
        claims.judge(CLAIM, (0.9, 0.8, 1.0), (0.1, 0.0, 0.2), effect_site=MLP0,
                     control_site=control)


def test_a_matched_control_is_judged():
    matched = claims.Site("attn_out", (0,), (5, 4))  # order of positions does not matter
    v = claims.judge(CLAIM, (0.9, 0.8, 1.0), (0.1, 0.0, 0.2), (0.8, 0.7, 0.9), MLP0, matched)
    assert v.passed and v.excess == (0.8, 0.7, 0.9)
    with pytest.raises(ValueError, match="both"):
        claims.judge(CLAIM, (0.9, 0.8, 1.0), (0.1, 0.0, 0.2), effect_site=MLP0)


def test_the_excess_over_the_control_must_be_sure():
    """Effect and control each on their side of the threshold, yet per prompt the effect does not
    surely beat the control: no pass."""
    v = claims.judge(CLAIM, (0.6, 0.5, 0.7), (0.45, 0.3, 0.49), (0.15, -0.05, 0.3))
    assert not v.passed
    assert claims.judge(CLAIM, (0.6, 0.5, 0.7), (0.45, 0.3, 0.49), (0.15, 0.05, 0.3)).passed
    assert "0.15 [-0.05, 0.30]" in claims.report([v])


def test_corrected_level_widens_intervals():
    values = torch.randn(200, generator=torch.Generator().manual_seed(0))
    one = claims.bootstrap_ci(values)
    sixteen = claims.bootstrap_ci(values, level=claims.corrected_level(16))
    assert claims.corrected_level(16) == pytest.approx(1 - 0.05 / 16)
    assert sixteen.low < one.low and sixteen.high > one.high
    assert claims.corrected_level(1) == 0.95
    for bad in (0, 2.5, None):
        with pytest.raises(ValueError):
            claims.corrected_level(bad)


def test_bootstrap_p_is_the_dual_of_the_interval():
    """p <= 1 - level exactly when the interval at that level has its low end above the
    threshold (same resamples); a mean below the threshold gives a large p."""
    g = torch.Generator().manual_seed(3)
    for shift in (0.0, 0.1, 0.2, 0.3):
        values = torch.randn(100, generator=g) + shift
        p = claims.bootstrap_p(values, 0.0)
        for level in (0.8, 0.9, 0.95, 0.99):
            low = claims.bootstrap_ci(values, level=level).low
            if abs(p - (1 - level)) > 2e-3:  # not on the boundary, where quantiles interpolate
                assert (p <= 1 - level) == (low > 0.0), (shift, level, p, low)
    assert claims.bootstrap_p(torch.full((50,), -1.0), 0.0) == 1.0
    assert claims.bootstrap_p(torch.full((50,), 1.0), 0.0, n_boot=999) == 2 / 1000  # its floor


def test_holm_controls_the_familywise_error_and_passes_what_bonferroni_passes():
    g = torch.Generator().manual_seed(0)
    # sixteen true nulls, 4000 times: some claim passes in at most about 5% of the families
    wrong = sum(any(claims.holm(torch.rand(16, generator=g))) for _ in range(4000))
    assert wrong / 4000 < 0.06
    # and it is not a rule that never passes anything: the same null at alpha = 0.5 passes often
    assert sum(any(claims.holm(torch.rand(16, generator=g), alpha=0.5)) for _ in range(400)) > 100
    for _ in range(200):
        p = torch.rand(8, generator=g) ** 4
        holm, bonferroni = claims.holm(p), (p <= 0.05 / 8).tolist()
        assert all(h or not b for h, b in zip(holm, bonferroni))
    # step-down: 0.01 passes against 0.05/4, then 0.016 against 0.05/3, then 0.02 against 0.05/2
    assert claims.holm([0.02, 0.01, 0.016, 0.5]) == [True, True, True, False]
    assert [p <= 0.05 / 4 for p in (0.02, 0.01, 0.016, 0.5)] == [False, True, False, False]
    assert claims.holm([0.04, 0.001]) == [True, True] and claims.holm([0.03, 0.024]) == [True, True]
    assert claims.holm([0.026, 0.03]) == [False, False]  # the smallest fails: stop there
    for bad in ([], [float("nan")], [1.5], [-0.1]):
        with pytest.raises(ValueError, match="p-values"):
            claims.holm(bad)
    with pytest.raises(ValueError, match="alpha"):
        claims.holm([0.1], alpha=0)


def test_null_interval_and_excess_over_the_null():
    null = claims.null_interval(lambda g: float(torch.rand(1, generator=g)), n=400, seed=1)
    assert abs(null.mean - 0.5) < 0.05 and null.low < 0.1 and null.high > 0.9
    again = claims.null_interval(lambda g: float(torch.rand(1, generator=g)), n=400, seed=1)
    assert again == null
    excess = claims.excess_over(claims.Interval(0.6, 0.5, 0.7), claims.Interval(0.1, 0.05, 0.2))
    assert [round(v, 6) for v in excess] == [0.5, 0.3, 0.65]
    with pytest.raises(ValueError, match="NaN"):
        claims.null_interval(lambda g: float("nan"), n=5)
    with pytest.raises(ValueError, match="n must"):
        claims.null_interval(lambda g: 0.0, n=1)


def test_run_design_judges_a_matched_design_and_refuses_an_unmatched_one():
    import pytest
    import torch

    from mechinterp_course import claims

    g = torch.Generator().manual_seed(0)
    noise = torch.randn(200, generator=g) * 0.1
    measure = lambda site, sample: noise + (1.0 if site.component == "mlp_out" else 0.0)  # noqa
    claim = claims.Claim("MLP carries it", "share", 0.5, "attention, same place")
    sample = claims.Sample(None, None, "synthetic", 200)
    mlp = claims.Site("mlp_out", (0,), ("subject",))
    attn = claims.Site("attn_out", (0,), ("subject",))
    assert claims.run_design(claims.Design(claim, mlp, attn, measure), sample).passed
    assert not claims.run_design(claims.Design(claim, attn, mlp, measure), sample).passed
    with pytest.raises(claims.UnmatchedControl):
        claims.run_design(claims.Design(claim, mlp, claims.Site("attn_out", (1,), ("subject",)),
                                        measure), sample)
