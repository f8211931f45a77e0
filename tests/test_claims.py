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
