"""Wrong: the warmup starts at lr * step / warmup -- step 0 has learning rate 0 and the peak comes a step late."""
from tests.exercises.reference import *  # noqa: F401,F403
from tests.exercises.reference import ex07_lr_at as _right


def ex07_lr_at(step, lr, warmup, steps, min_lr_ratio):
    if step < warmup:
        return lr * step / warmup
    return _right(step, lr, warmup, steps, min_lr_ratio)
