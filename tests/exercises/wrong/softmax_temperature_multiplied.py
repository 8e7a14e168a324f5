"""Wrong: the logits are multiplied by the temperature -- a high T sharpens instead of softening."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex14_softmax_t(logits, temperature):
    return F.softmax(logits.float() * temperature, dim=-1)
