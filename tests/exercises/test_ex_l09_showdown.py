"""Lesson 9 exercise: a result over several seeds is a mean and a spread, not one lucky number."""

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
