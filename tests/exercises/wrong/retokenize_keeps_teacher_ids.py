"""Wrong: the stored example is handed to the student as it is -- the teacher's ids mean other text (or no
token at all) in the student's vocabulary."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex31_retokenize(teacher_tok, student_tok, ids, mask):
    return list(ids), list(mask)
