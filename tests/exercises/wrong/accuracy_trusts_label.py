"""Wrong: answers are compared with the record's stored 'answer' field (which may be a noisy label)."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex13_accuracy(records, outputs):
    by_task = {}
    for r, (text, ended) in zip(records, outputs):
        by_task.setdefault(r["task"], []).append(bool(ended and r["answer"] in text))
    correct = [c for v in by_task.values() for c in v]
    return {"acc": sum(correct) / len(correct), "acc_by_task": {t: sum(v) / len(v) for t, v in by_task.items()}}
