"""Wrong: the softmax runs over the first axis (the batch), not over the vocabulary."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex14_softmax_t(logits, temperature):
    return F.softmax(logits.float() / temperature, dim=0)
