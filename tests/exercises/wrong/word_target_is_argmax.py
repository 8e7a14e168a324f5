"""Wrong: the word-level target keeps only the teacher's top token (one-hot) -- the dark knowledge is gone."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex16_word_level_target(teacher_logits, targets, temperature):
    rows = teacher_logits[targets != IGNORE_INDEX]
    return F.one_hot(rows.argmax(-1), rows.size(-1)).float()
