"""Wrong: the summed answer loss is divided by every position of the batch, padding and prompt included."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex11_masked_nll(logits, targets):
    return masked_nll(logits, targets, reduction="sum") / targets.numel()
