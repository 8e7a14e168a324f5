"""minikd.traces: the two arms of reasoning distillation, and the checks that grade worked solutions."""

import random

import pytest
import torch

from minikd.data import IGNORE_INDEX, SFTData
from minikd.model import GPT, get_config
from minikd.seqkd import as_examples
from minikd.world import check_trace, make_record, parse_prompt
from minikd.tokenizer import Tokenizer
from minikd.traces import (answers_only, first_wrong_step, grade, operands, sum_prompts, tokens_seen,
                           trace_passes)

RIGHT = "8+5=13 carry 1. 7+6+1=14 carry 1. The answer is 143."


def test_sum_prompts_ask_the_same_sum_two_ways():
    p = sum_prompts(78, 65)
    assert parse_prompt(p["answers"]) == ("add", (78, 65))
    assert parse_prompt(p["traces"]) == ("add_steps", (78, 65))
    assert operands(p["answers"]) == operands(p["traces"]) == (78, 65)
    with pytest.raises(ValueError, match="not a sum"):
        operands("Sort 3 1 2.")


def test_answers_only_keeps_the_teachers_answer_right_or_wrong():
    trace = {"id": "t-1", "prompt": "Add 78 + 65 step by step.", "completion": RIGHT, "ended": True}
    r = answers_only(trace)
    assert r["prompt"] == "What is 78 + 65?" and r["completion"] == "The answer is 143." and r["task"] == "add"
    wrong = answers_only({**trace, "completion": RIGHT.replace("143", "153")})
    assert wrong["completion"] == "The answer is 153." and wrong["answer"] == "143", "the teacher's answer, not the truth"
    assert answers_only({**trace, "completion": "8+5=13 carry 1. 7+6"}) is None


def test_trace_passes_needs_the_answer_the_steps_and_the_end():
    p = "Add 78 + 65 step by step."
    assert trace_passes(p, RIGHT)
    assert not trace_passes(p, RIGHT.replace("7+6+1=14", "7+6+1=15")), "a wrong step with a right answer fails"
    assert not trace_passes(p, RIGHT.replace("143", "142"))
    assert not trace_passes(p, RIGHT, ended=False), "a cut-off solution is never kept"


def test_first_wrong_step_agrees_with_check_trace():
    rng = random.Random(0)
    for i in range(300):
        rec = make_record("add_steps", rng, rng.choice((1, 2, 3)), 0.5, i)
        k = first_wrong_step(rec["prompt"], rec["completion"])
        assert (k is None) == check_trace(rec["prompt"], rec["completion"]) == (not rec["label_noisy"])
    p = "Add 78 + 65 step by step."
    assert first_wrong_step(p, RIGHT.replace("7+6+1=14", "7+6+1=15")) == 2
    assert first_wrong_step(p, RIGHT.replace("143", "142")) == 3
    assert first_wrong_step(p, "8+5=13 carry 1.") == 2


def test_tokens_seen_replays_the_training_batches():
    tok = Tokenizer.default()
    rng = random.Random(1)
    recs = [make_record("add_steps", rng, 2, 0.0, i) for i in range(20)]
    examples = as_examples(recs, tok)
    got = tokens_seen(examples, batch_size=4, steps=5, seed=3)
    data = SFTData(examples, tok.pad_id, 4, seed=3)
    batches = [data.get_batch(s) for s in range(5)]
    assert got["answer_tokens"] == sum(int((b["targets"] != IGNORE_INDEX).sum()) for b in batches)
    assert got["tokens"] == sum(len(examples[i]["ids"]) for b in batches for i in b["index"].tolist())


def test_grade_reports_answers_and_traces():
    tok = Tokenizer.default()
    torch.manual_seed(0)
    model = GPT(get_config("tiny", vocab_size=tok.vocab_size)).eval()
    records = [{"task": "add_steps", "prompt": "Add 78 + 65 step by step."}, {"task": "add", "prompt": "What is 7 + 5?"}]
    g = grade(model, tok, records, max_new_tokens=4)
    assert g["answer_ok"] == [False, False] and g["trace_ok"][1] is None and g["trace_ok"][0] is False
    assert len(g["outputs"]) == 2
