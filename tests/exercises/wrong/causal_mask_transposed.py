"""Wrong: the causal mask is upper-triangular -- every query sees the future, none sees the past."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex05_causal_mask(T):
    return torch.ones(T, T, dtype=torch.bool).triu()
