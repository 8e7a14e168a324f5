"""Wrong: an answer cut off by the token limit counts as right when its text verifies."""
from tests.exercises.reference import *  # noqa: F401,F403
from tests.exercises.reference import ex13_accuracy as _right


def ex13_accuracy(records, outputs):
    return _right(records, [(text, True) for text, _ in outputs])
