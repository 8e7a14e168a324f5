"""Wrong: the spread is taken of each method separately (unpaired), ignoring that they shared the seed."""
import math

from tests.exercises.reference import *  # noqa: F401,F403


def ex24_paired_interval(a, b):
    def sd(v):
        m = sum(v) / len(v)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    n = len(a)
    m = sum(a) / n - sum(b) / n
    t = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}[n]
    half = t * math.sqrt(sd(a) ** 2 / n + sd(b) ** 2 / n)
    return m, m - half, m + half
