"""Lesson 9 exercise: a filter step over the teacher's stored answers -- every drop counted, never silent."""

from minikd.world import verify

TEACHER_OUT = [
    {"id": "a", "prompt": "What is 2 + 3?", "completion": "The answer is 5.", "ended": True},  # keep
    {"id": "b", "prompt": "What is 4 + 4?", "completion": "The answer is 9.", "ended": True},  # incorrect
    {"id": "c", "prompt": "What is 6 + 1?", "completion": "The answer is 7", "ended": False},  # truncated
    {"id": "d", "prompt": "What is 2 + 3?", "completion": "The answer is 5.", "ended": True},  # duplicate of a
    {"id": "e", "prompt": "What is 2 + 3?", "completion": "5", "ended": True},  # keep: another form
    {"id": "f", "prompt": "Sort 3 1 2.", "completion": "1 2 3", "ended": False},  # right text, but cut off
    {"id": "g", "prompt": "Sort 3 1 2.", "completion": "1 2 3", "ended": True},  # keep
]


def _run(wb, records=TEACHER_OUT):
    kept, counts = wb.ex22_filter_records([dict(r) for r in records], verify)
    return [r["id"] for r in kept], {k: v for k, v in dict(counts).items() if v}


def test_ex22_drops_truncated_answers(wb):
    ids, counts = _run(wb)
    assert "c" not in ids and "f" not in ids, \
        "an answer that did not end (ended=False) was cut off by the token limit: drop it, even if it verifies"
    assert counts.get("truncated") == 2


def test_ex22_drops_incorrect_answers(wb):
    ids, counts = _run(wb)
    assert "b" not in ids, "the verifier rejects 4 + 4 = 9: drop it (or the student learns the teacher's error)"
    assert counts.get("incorrect") == 1


def test_ex22_drops_duplicates_keeps_other_forms(wb):
    ids, counts = _run(wb)
    assert ids.count("a") == 1 and "d" not in ids, "the same (prompt, completion) twice is kept once"
    assert "e" in ids, "the same prompt with a different completion is not a duplicate"
    assert counts.get("duplicate") == 1


def test_ex22_every_record_accounted_for(wb):
    ids, counts = _run(wb)
    assert ids == ["a", "e", "g"], "keep the good records in their original order"
    assert counts == {"truncated": 2, "incorrect": 1, "duplicate": 1}, \
        "count every drop by reason (checked in this order: truncated, incorrect, duplicate)"
    assert len(ids) + sum(counts.values()) == len(TEACHER_OUT)
