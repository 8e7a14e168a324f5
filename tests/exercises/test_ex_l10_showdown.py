"""Lesson 10 exercise: a result over several seeds is a mean and a spread, not one lucky number."""

import math

import pytest


def test_ex23_mean_and_sample_std(wb):
    mean, spread = wb.ex23_mean_and_spread([0.70, 0.80, 0.90, 1.00])
    assert mean == pytest.approx(0.85)
    assert spread == pytest.approx(math.sqrt(0.05 / 3)), \
        "the SAMPLE standard deviation divides by n - 1: a handful of seeds underestimates the spread otherwise"


def test_ex23_one_seed_has_no_spread(wb):
    assert tuple(wb.ex23_mean_and_spread([0.42])) == pytest.approx((0.42, 0.0)), \
        "with one value the spread is 0 (not a division by zero)"


def test_ex23_equal_values(wb):
    mean, spread = wb.ex23_mean_and_spread([0.5, 0.5, 0.5])
    assert (mean, spread) == pytest.approx((0.5, 0.0))


def test_ex24_paired_interval_by_hand(wb):
    # differences 0.40, 0.20, 0.30: mean 0.30, sample sd 0.10, half-width 4.303 * 0.10 / sqrt(3) = 0.248434
    mean, lo, hi = wb.ex24_paired_interval([0.9, 0.8, 0.85], [0.5, 0.6, 0.55])
    assert mean == pytest.approx(0.30)
    assert (lo, hi) == pytest.approx((0.30 - 0.248434, 0.30 + 0.248434), abs=1e-5), \
        "mean -/+ t(0.975, n-1) * s / sqrt(n), with t = 4.303 for 3 seeds (not 1.96: few seeds, wide interval)"


def test_ex24_pairing_removes_what_the_seed_does_to_both(wb):
    # a is 5 points above b on every seed, while the seeds themselves move both by 30 points
    mean, lo, hi = wb.ex24_paired_interval([0.90, 0.60, 0.75], [0.85, 0.55, 0.70])
    assert (mean, lo, hi) == pytest.approx((0.05, 0.05, 0.05)), \
        "pair by seed: the differences are all 0.05, so their spread (and the interval's width) is 0"


def test_ex24_not_separable_when_the_interval_holds_zero(wb):
    mean, lo, hi = wb.ex24_paired_interval([0.5, 0.7, 0.6, 0.9, 0.4], [0.6, 0.5, 0.6, 0.7, 0.5])
    assert mean == pytest.approx(0.04) and lo < 0 < hi, "5 seeds: t = 2.776; this interval spans 0"
    assert hi - lo == pytest.approx(2 * 2.776 * math.sqrt(0.023) / math.sqrt(5), abs=1e-5)
