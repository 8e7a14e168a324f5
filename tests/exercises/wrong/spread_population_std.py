"""Wrong: the spread divides by n (population std) instead of n - 1 (sample std)."""
import math

from tests.exercises.reference import *  # noqa: F401,F403


def ex23_mean_and_spread(values):
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))
