"""Wrong: a batch without answer tokens divides 0 by 0 and gives nan."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex11_masked_nll(logits, targets):
    keep = targets != IGNORE_INDEX
    return F.cross_entropy(logits[keep].float(), targets[keep], reduction="sum") / keep.sum()
