"""Wrong: the text is re-encoded for the student, but the teacher's mask is kept (cut or padded to fit):
the student's answer has another number of tokens, so the mask no longer covers exactly its answer."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex31_retokenize(teacher_tok, student_tok, ids, mask):
    new_ids, _ = student_tok.render(teacher_tok.decode(ids[1:ids.index(teacher_tok.response_id)]),
                                    teacher_tok.decode([i for i, m in zip(ids, mask) if m and i != teacher_tok.end_id]))
    kept = list(mask)[:len(new_ids)]
    return new_ids, kept + [1] * (len(new_ids) - len(kept))
