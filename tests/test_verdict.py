"""Verdicts over seeds: the 95 % t interval by hand, paired differences, and the words a claim may use."""

import math

import pytest

from minikd.verdict import claim, direction, mean_interval, paired, t95


def test_t95_table_and_its_edges():
    assert t95(2) == 4.303 and t95(4) == 2.776  # 3 and 5 seeds
    assert t95(22) == t95(20) == 2.086  # between rows: the smaller df (a wider, safe interval)
    assert t95(10_000) == 1.960
    with pytest.raises(ValueError, match="at least 2 values"):
        t95(0)


def test_mean_interval_by_hand():
    # [1, 2, 3]: mean 2, sample sd 1, half-width t(2) * 1 / sqrt(3) = 4.303 / 1.7320508 = 2.48434
    iv = mean_interval([1.0, 2.0, 3.0])
    assert iv.mean == pytest.approx(2.0)
    assert (iv.lo, iv.hi) == pytest.approx((2 - 2.48434, 2 + 2.48434), abs=1e-5)
    assert not iv.separable and direction(iv) == "≈"  # a normal-approximation (1.96) interval would exclude 0
    up = mean_interval([2.0, 3.0, 4.0])
    assert up.lo == pytest.approx(0.51566, abs=1e-5) and direction(up) == ">"
    assert direction(mean_interval([-4.0, -3.0, -2.0])) == "<"


def test_one_value_has_no_interval_and_separates_nothing():
    iv = mean_interval([0.7])
    assert iv.mean == 0.7 and math.isnan(iv.lo) and math.isnan(iv.hi)
    assert direction(iv) == "≈"


def test_paired_differences_remove_what_the_seed_does_to_both():
    a = [0.90, 0.60, 0.75]  # seed-to-seed spread of 30 points ...
    b = [0.85, 0.55, 0.70]  # ... but a is 5 points above b on every seed
    iv = paired(a, b)
    assert iv.mean == pytest.approx(0.05) and iv.lo == pytest.approx(0.05) and iv.separable
    unpaired = mean_interval(a).lo - mean_interval(b).hi  # the two intervals overlap widely
    assert unpaired < 0
    assert paired([0.5, 0.7], 0.4).mean == pytest.approx(0.2)  # against a constant
    with pytest.raises(ValueError, match="pair them"):
        paired([1.0, 2.0], [1.0])


def test_claim_verdicts_and_sentence(capsys):
    c = claim("A beats B", [0.9, 0.8, 0.85], [0.5, 0.6, 0.55], ">", "A − B, accuracy", scale=100, unit="points")
    # differences 40, 20, 30 points: mean 30, sd 10, half-width 4.303 * 10 / sqrt(3) = 24.843
    assert c.verdict == "holds" and c.holds
    assert (c.diff.lo, c.diff.hi) == pytest.approx((5.157, 54.843), abs=1e-3)
    printed = capsys.readouterr().out
    assert printed.strip() == c.sentence()
    assert c.sentence() == ("[holds] A beats B — A − B, accuracy: +30.00 points, 95 % CI [+5.16, +54.84], n = 3")

    assert claim("B beats A", [0.5, 0.6, 0.55], [0.9, 0.8, 0.85], ">").verdict == "does not hold"
    assert claim("A beats B", [1.0, 2.0, 3.0], 0.0, ">").verdict == "not separable"
    same = claim("A equals B", [1.0, 2.0, 3.0], 0.0, "≈")
    assert same.verdict == "consistent (not separable)" and same.holds
    assert claim("A equals B", [2.0, 3.0, 4.0], 0.0, "≈").verdict == "does not hold"
    one = claim("A beats B", [0.9], [0.1], ">")
    assert one.verdict == "not separable" and "one value: no interval" in one.sentence()
    with pytest.raises(ValueError, match="expect"):
        claim("x", [1.0], [0.0], "bigger")


def test_check_and_fast_verdicts():
    from minikd.verdict import LOG, check
    n = len(LOG)
    c = check("the resumed weights equal the uninterrupted run's", 1 == 1, "max |diff| = 0")
    assert c.verdict == "holds" and c.sentence().startswith("[holds]") and LOG[n] is c
    assert check("x", False, "e").verdict == "does not hold"
    # a --fast run never asserts what it did not show: undecided or contrary reads "needs the default run"
    assert check("x", False, "e", fast=True).verdict == "needs the default run"
    assert claim("a > b", [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], ">", fast=True).verdict == "needs the default run"
    assert claim("a > b", [1.0, 1.1, 0.9], [0.0, 0.1, 0.0], ">", fast=True).verdict == "holds"
    assert claim("a > b", [0.0, 0.1, 0.0], [1.0, 1.1, 0.9], ">").verdict == "does not hold"


def test_a_method_claim_needs_three_training_seeds_and_says_its_unit():
    """A claim about a METHOD is decided over training seeds: from one (or two) runs it is never "[holds]" or
    "[does not hold]", however many prompts each run was scored on. A claim about two particular models says so."""
    from minikd.verdict import ONE_RUN, by_prompt, by_seed
    big = [0.9, 0.95, 0.85]  # far apart: with 3 seeds this holds
    method = claim("A beats B", big, [0.1, 0.15, 0.05], ">", by_seed("A − B, accuracy"), scale=100, unit="points")
    assert method.verdict == "holds"
    assert method.sentence().endswith("n = 3 training seeds, paired by seed")
    one = claim("A beats B", [0.9], [0.1], ">", by_seed("A − B, accuracy"), scale=100, unit="points")
    assert one.verdict == ONE_RUN and one.sentence().startswith(f"[{ONE_RUN}]") and not one.holds
    assert claim("B beats A", [0.1], [0.9], ">", by_seed("B − A")).verdict == ONE_RUN  # not "does not hold"
    two = claim("A beats B", [0.9, 0.8], [0.1, 0.2], ">", by_seed("A − B"))
    assert two.verdict == "2 runs: see lesson 10 / the showdown"
    assert claim("A beats B", [0.9], [0.1], ">", by_seed("A − B"), fast=True).verdict == "needs the default run"
    models = claim("this A beats this B", [1.0] * 50, [0.0] * 50, ">", by_prompt("A − B, right per prompt", seed=0))
    assert models.verdict == "holds"
    assert models.sentence().endswith("n = 50 test prompts; these two models (seed 0), paired by test prompt")
    teacher = claim("the teacher likes its own answers", [1.0] * 9, [0.0] * 9, ">",
                    by_prompt("own − ground truth", seed=0, models="this teacher"))
    assert teacher.sentence().endswith("this teacher (seed 0), paired by test prompt")
    with pytest.raises(ValueError, match="training seed"):
        by_prompt("A − B", seed=None)


def test_a_saved_claim_keeps_its_unit(runs_tmp):
    """`minikd readme` re-decides a saved lesson claim by the same rule: a one-seed method claim stays undecided."""
    from minikd.machinery import rendering
    from minikd.verdict import ONE_RUN, by_prompt, by_seed, decide
    one = decide("A beats B", [0.9], [0.1], ">", by_seed("A − B"), scale=100, unit="points")
    models = decide("this A beats this B", [1.0] * 9, [0.0] * 9, ">", by_prompt("A − B", seed=2, models="A and B"))
    again = [rendering.claim_from_record(rendering.claim_record(c)) for c in (one, models)]
    assert again[0].verdict == ONE_RUN and again[0].sentence() == one.sentence()
    assert again[1].sentence() == models.sentence() and "A and B (seed 2)" in again[1].sentence()
