"""Wrong: positions counted from 1 (the first differing token reported as 1, not 0)."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex26_first_divergence(a, b):
    at = first_divergence(list(a), list(b))
    return None if at is None else at + 1
