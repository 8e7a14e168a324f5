"""Wrong: the word-level target is taken at every position, prompt included."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex16_word_level_target(teacher_logits, targets, temperature):
    return softmax_t(teacher_logits, temperature)
