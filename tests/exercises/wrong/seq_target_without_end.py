"""Wrong: the sequence-level target drops the <|end|> token."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex18_sequence_level_target(ids, mask):
    return [i for i, m in zip(ids[:-1], mask[:-1]) if m == 1]
