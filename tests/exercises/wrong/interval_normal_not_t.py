"""Wrong: the interval uses the normal 1.96 instead of Student's t (far too narrow with 3-5 seeds)."""
import math

from tests.exercises.reference import *  # noqa: F401,F403


def ex24_paired_interval(a, b):
    d = [x - y for x, y in zip(a, b)]
    m = sum(d) / len(d)
    s = math.sqrt(sum((v - m) ** 2 for v in d) / (len(d) - 1))
    return m, m - 1.96 * s / math.sqrt(len(d)), m + 1.96 * s / math.sqrt(len(d))
