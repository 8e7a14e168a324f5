"""Wrong: the sequence-level step trains on the record's 'answer' (the ground truth), not the stored teacher text."""
from tests.exercises.reference import *  # noqa: F401,F403
from tests.exercises.reference import ex21_seq_kd_step as _right


def ex21_seq_kd_step(student, optimizer, tok, records):
    return _right(student, optimizer, tok, [{**r, "completion": r["answer"]} for r in records])
