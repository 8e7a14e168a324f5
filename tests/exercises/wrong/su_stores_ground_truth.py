"""Wrong: the seq-KD builder asks the teacher but stores the ground-truth completion instead of u = teacher(s)."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex20_build_su_dataset(records, teacher_fn):
    out = []
    for r in records:
        _, ended = teacher_fn(r["prompt"])
        out.append({**r, "ended": ended, "source": "teacher"})
    return out
