"""Lesson 5 exercise: verified accuracy -- the verifier decides, a cut-off answer is wrong."""

import pytest

RECORDS = [
    {"task": "add", "prompt": "What is 2 + 3?", "answer": "5"},
    {"task": "add", "prompt": "What is 10 + 20?", "answer": "30"},
    {"task": "add", "prompt": "What is 7 + 7?", "answer": "14"},
    {"task": "sort", "prompt": "Sort 5 3 9 1 7.", "answer": "1 3 5 7 9"},
    {"task": "sort", "prompt": "Sort 2 1 2.", "answer": "1 2 2"},
]


def test_ex13_accuracy_by_task(wb):
    outputs = [("The answer is 5.", True),  # right, in another surface form
               ("31", True),  # wrong
               ("7 + 7 = 14", True),  # right
               ("Sorted: 1 3 5 7 9.", True),  # right
               ("1 2 2", True)]  # right
    got = wb.ex13_accuracy(RECORDS, outputs)
    assert got["acc"] == pytest.approx(4 / 5)
    assert got["acc_by_task"] == pytest.approx({"add": 2 / 3, "sort": 1.0}), \
        "accuracy per task family: the share of that family's records answered right"


def test_ex13_truncated_answers_are_wrong(wb):
    outputs = [("5", False), ("30", True), ("14", False), ("1 3 5 7 9", False), ("1 2 2", True)]
    got = wb.ex13_accuracy(RECORDS, outputs)
    assert got["acc"] == pytest.approx(2 / 5), \
        "an answer cut off before its <|end|> token (ended=False) counts as wrong, whatever its text says"
    assert got["acc_by_task"] == pytest.approx({"add": 1 / 3, "sort": 1 / 2})


def test_ex13_the_verifier_recomputes_the_truth(wb):
    noisy = [{**RECORDS[0], "answer": "6"}]  # a noisy label: the stored answer is wrong
    assert wb.ex13_accuracy(noisy, [("5", True)])["acc"] == 1.0, \
        "score with minikd.world.verify(prompt, text), which recomputes the answer from the prompt; " \
        "a record's 'answer' field may be wrong"
    assert wb.ex13_accuracy(noisy, [("6", True)])["acc"] == 0.0
