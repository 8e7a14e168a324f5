"""Lesson 8 exercises: the sequence-level target (card question 1, second half), greedy decoding with the KV
cache, the stored (s, u) dataset, and a training step with no teacher present (card question 3)."""

import copy
import inspect

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from minikd.data import collate, read_jsonl, write_jsonl
from minikd.losses import masked_nll, softmax_t
from minikd.model import GPT, GPTConfig

# ---------------------------------------------------------------------------------------------------
# ex18: the sequence-level target
# ---------------------------------------------------------------------------------------------------

P, R, E = 90, 91, 92
IDS = [P, 10, 11, R, 20, 21, 22, E]
MASK = [0, 0, 0, 0, 1, 1, 1, 1]


def test_ex18_the_answer_tokens(wb):
    got = wb.ex18_sequence_level_target(IDS, MASK)
    assert [int(i) for i in got] == [20, 21, 22, E], \
        "the target is the answer's token ids, the <|end|> token included, nothing of the prompt or template"


def test_ex18_card_question_1_tokens_not_distributions(wb):
    """Card, question 1: word-level KD matches a distribution at each answer position; sequence-level KD
    matches ONE token sequence the teacher wrote."""
    got = wb.ex18_sequence_level_target(IDS, MASK)
    assert all(isinstance(i, int) for i in got), "a token sequence: plain int ids, no probabilities"
    torch.manual_seed(0)
    word_level = softmax_t(torch.randn(len(IDS) - 1, 100)[torch.tensor(MASK[1:]) == 1])  # (n_answer, V)
    assert len(got) == word_level.shape[0] == sum(MASK), \
        "both targets cover the same answer positions: one token each here, a V-sized distribution each there"
    assert word_level.numel() == 100 * len(got), "word-level stores V numbers per position; this stores 1"


# ---------------------------------------------------------------------------------------------------
# ex19: greedy decoding with the KV cache
# ---------------------------------------------------------------------------------------------------


class _Cache:
    def __init__(self):
        self.length = 0


class CountingLM(nn.Module):
    """A fake model: after token x it always predicts x + 1 (mod V). It records every call it gets."""

    def __init__(self, V=12):
        super().__init__()
        self.config = GPTConfig(vocab_size=V, block_size=64, n_layer=1, n_head=1, n_embd=4)
        self.dummy = nn.Parameter(torch.zeros(1))  # so next(model.parameters()) works
        self.calls = []  # (tokens read, cache given)

    def new_cache(self, batch_size):
        return _Cache()

    def forward(self, idx, cache=None):
        self.calls.append((idx.size(1), cache is not None))
        if cache is not None:
            cache.length += idx.size(1)
        return 10.0 * F.one_hot((idx + 1) % self.config.vocab_size, self.config.vocab_size).float()


def _decode(wb, model, prompt, n, end):
    tokens, ended = wb.ex19_greedy_decode(model, prompt, n, end)
    return [int(t) for t in tokens], bool(ended)


def test_ex19_stops_at_the_end_token(wb):
    assert _decode(wb, CountingLM(), [2, 3], 10, 7) == ([4, 5, 6], True), \
        "after 3 the fake model writes 4, 5, 6, then the end id 7: return [4, 5, 6] (no end id) and ended=True"


def test_ex19_cut_off_by_the_limit(wb):
    assert _decode(wb, CountingLM(), [2, 3], 3, 8) == ([4, 5, 6], False), \
        "max_new_tokens=3 and no end token written: 3 tokens, ended=False"
    assert _decode(wb, CountingLM(), [2, 3], 3, 7) == ([4, 5, 6], False), \
        "the end token counts toward max_new_tokens: 4, 5, 6 use up the 3 tokens before 7 can be written"
    assert _decode(wb, CountingLM(), [2, 3], 4, 7) == ([4, 5, 6], True)


def test_ex19_reads_each_token_once_with_the_cache(wb):
    model = CountingLM()
    prompt = [1, 2, 3, 4, 5]
    _decode(wb, model, prompt, 6, 11)  # writes 6 7 8 9 10, then the end id 11
    assert model.calls and all(cached for _, cached in model.calls), "pass the cache to every forward call"
    assert model.calls[0][0] == len(prompt), "first read the whole prompt once (it fills the cache)"
    assert all(n == 1 for n, _ in model.calls[1:]), \
        "after the prompt, feed ONLY the newest token: the cache already holds the keys/values of the rest"
    assert sum(n for n, _ in model.calls) <= len(prompt) + 6, "each token is read at most once"


def _greedy_without_cache(model, prompt, n, end):
    seq, out = list(prompt), []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(torch.tensor([seq]))[0, -1].argmax())  # re-read everything: slow but plainly right
            if nxt == end:
                return out, True
            out.append(nxt)
            seq.append(nxt)
    return out, False


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ex19_same_tokens_as_rereading_everything(wb, seed):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=23, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    with torch.no_grad():
        model.wpe.weight.mul_(40.0)  # strong position embeddings: a position off by one shows at once
    prompt = [5, 9, 2, 17]
    want = _greedy_without_cache(model, prompt, 12, end=22)
    got = _decode(wb, model, prompt, 12, 22)
    assert got == want, "with the KV cache, greedy decoding must write exactly what re-reading the whole " \
                        "sequence writes; a difference means a position is read twice or skipped"


# ---------------------------------------------------------------------------------------------------
# ex20: the stored (s, u) dataset
# ---------------------------------------------------------------------------------------------------

GROUND_TRUTH = [
    {"id": "t-0", "task": "add", "prompt": "What is 2 + 3?", "completion": "5", "answer": "5"},
    {"id": "t-1", "task": "add", "prompt": "What is 4 + 4?", "completion": "9", "answer": "8"},  # noisy label
    {"id": "t-2", "task": "sort", "prompt": "Sort 3 1 2.", "completion": "1 2 3", "answer": "1 2 3"},
]


class FakeTeacher:
    """u = teacher(s): answers 'The answer is <something>.'; counts how often it is asked."""

    def __init__(self):
        self.asked = []

    def __call__(self, prompt):
        self.asked.append(prompt)
        ended = "Sort" not in prompt  # pretend the sort answer was cut off
        return f"Teacher's answer to {prompt}", ended


def test_ex20_completion_is_the_teachers_output(wb):
    teacher = FakeTeacher()
    out = wb.ex20_build_su_dataset([dict(r) for r in GROUND_TRUTH], teacher)
    assert len(out) == len(GROUND_TRUTH)
    for r, o in zip(GROUND_TRUTH, out):
        assert o["prompt"] == r["prompt"], "keep the prompt s, in the same order"
        assert o["completion"] == f"Teacher's answer to {r['prompt']}", \
            "the stored completion is u = teacher(s), NOT the ground-truth completion"
        assert o["source"] == "teacher", "mark where the completion came from: source='teacher'"
    assert [o["ended"] for o in out] == [True, True, False], "record whether the teacher's answer ended"


def test_ex20_teacher_asked_once_per_prompt_fields_kept(wb):
    teacher = FakeTeacher()
    records = [dict(r) for r in GROUND_TRUTH]
    out = wb.ex20_build_su_dataset(records, teacher)
    assert teacher.asked == [r["prompt"] for r in GROUND_TRUTH], "ask the teacher once per prompt, in order"
    fields = lambda r: (r["id"], r["task"], r["answer"])  # noqa: E731
    assert [fields(o) for o in out] == [fields(r) for r in GROUND_TRUTH], \
        "keep the other fields (id, task, answer): later steps filter and score with them"
    assert records == GROUND_TRUTH, "do not change the input records: build new dicts"


# ---------------------------------------------------------------------------------------------------
# ex21: sequence-level training -- stored data only, no teacher
# ---------------------------------------------------------------------------------------------------

STORED = [
    {"id": "u-0", "prompt": "What is 2 + 3?", "completion": "The answer is 5.", "answer": "5", "source": "teacher"},
    {"id": "u-1", "prompt": "Sort 5 3 9.", "completion": "Sorted: 3 5 9.", "answer": "3 5 9", "source": "teacher"},
    {"id": "u-2", "prompt": "What is 10 + 7?", "completion": "10 + 7 = 17", "answer": "17", "source": "teacher"},
]


def _no_teacher(*args, **kwargs):
    raise AssertionError("offline sequence-level KD runs no teacher: nothing may be generated during training")


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """The (s, u) file written in advance, read back; generation is switched off from here on."""
    path = tmp_path / "teacher_greedy.jsonl"
    write_jsonl(path, STORED)
    import minikd.generate
    monkeypatch.setattr(minikd.generate, "generate", _no_teacher)
    return list(read_jsonl(path))


def _student(tok, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16))


def test_ex21_loss_is_masked_nll_of_the_stored_answers(wb, tok, stored):
    student = _student(tok)
    before = copy.deepcopy(student)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    loss = wb.ex21_seq_kd_step(student, optimizer, tok, stored)
    batch = collate([tok.render(r["prompt"], r["completion"]) for r in stored], tok.pad_id)
    with torch.no_grad():
        want = float(masked_nll(before(batch["inputs"]), batch["targets"]))
    assert float(loss) == pytest.approx(want, abs=1e-4), \
        f"return -log p(u | s) per answer token BEFORE the update ({want:.4f}): render prompt + stored " \
        "completion, collate (answer-only targets), masked NLL"
    changed = any(not torch.equal(a, b) for a, b in zip(student.parameters(), before.parameters()))
    assert changed, "the step must update the student: zero_grad, backward, optimizer.step()"


def test_ex21_repeated_steps_learn_the_stored_answers(wb, tok, stored):
    student = _student(tok, seed=1)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = [float(wb.ex21_seq_kd_step(student, optimizer, tok, stored)) for _ in range(8)]
    assert losses[-1] < losses[0], f"the loss on the same stored batch must fall: {losses}"


def test_ex21_card_question_3_no_teacher_needed(wb, tok, stored):
    """Card, question 3: offline sequence distillation needs no teacher logits -- the stored text is the target."""
    params = inspect.signature(wb.ex21_seq_kd_step).parameters
    assert not any("teacher" in name for name in params), \
        "the training step takes the student, its optimizer, the tokenizer and stored records: no teacher"
    assert all(set(r) <= {"id", "task", "prompt", "completion", "answer", "source"} for r in stored), \
        "the stored records hold text only, no logits"
    student = _student(tok, seed=2)
    loss = wb.ex21_seq_kd_step(student, torch.optim.SGD(student.parameters(), lr=0.1), tok, stored)
    assert torch.isfinite(torch.tensor(float(loss))), "the step runs on stored text alone"
