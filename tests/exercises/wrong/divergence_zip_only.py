"""Wrong: only the common length is compared (zip), so a student that stops early never 'leaves'."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex26_first_divergence(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None
