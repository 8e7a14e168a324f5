"""Two bug classes the suite missed (#20 item 7), each test shown once to fail on its planted bug.

(a) The verifying filter judges the TEACHER's answer, never the record's own label. Teacher records carry the
    prompt record's old completion as "ground_truth" (wrong 40 % of the time in the training set) and the true
    "answer"; a filter that read either would keep a wrong teacher answer, or drop a right one.
(b) Every settings-keyed cache (the teacher, each student's result, the teacher's top-k store) is reused only
    when it was made from the same examples and settings, not merely from as many examples.
"""

import torch

from minikd.data import examples_fingerprint, write_jsonl
from minikd.machinery import stages, students
from minikd.machinery.cache import cached_topk_store
from minikd.machinery.labelling import filter_dataset
from minikd.machinery.stages import Profile, get_teacher
from minikd.model import GPT, get_config
from minikd.seqkd import as_examples, drop_reason, filter_records
from minikd.tokenizer import Tokenizer

TOK = Tokenizer.default()
RIGHT_TEACHER = {"prompt": "What is 12 + 30?", "completion": "The answer is 42.", "ground_truth": "The answer is 43.",
                 "answer": "42", "source": "teacher", "ended": True}  # a right answer to a noisy label
WRONG_TEACHER = {"prompt": "What is 20 + 5?", "completion": "The answer is 26.", "ground_truth": "The answer is 25.",
                 "answer": "25", "source": "teacher", "ended": True}  # a wrong answer to a right label


# (a) ---------------------------------------------------------------------------------------------------------

def test_the_core_filter_judges_the_teachers_answer_not_the_label():
    assert drop_reason(RIGHT_TEACHER, TOK, 128) is None
    assert drop_reason(WRONG_TEACHER, TOK, 128) == "incorrect"
    kept, counts = filter_records([RIGHT_TEACHER, WRONG_TEACHER], lambda r: drop_reason(r, TOK, 128))
    assert kept == [RIGHT_TEACHER] and counts["incorrect"] == 1


def test_the_file_filter_judges_the_teachers_answer_not_the_label(tmp_path):
    raw = tmp_path / "teacher.jsonl"
    write_jsonl(raw, [RIGHT_TEACHER, WRONG_TEACHER])
    report = filter_dataset(raw, tmp_path / "kept.jsonl", TOK, 128)
    kept = [line for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert report["incorrect"] == 1 and report["output"] == 1
    assert len(kept) == 1 and '"The answer is 42."' in kept[0] and '"verified": true' in kept[0]


# (b) ---------------------------------------------------------------------------------------------------------

RECORDS = [{"prompt": f"What is {a} + {b}?", "completion": f"The answer is {a + b}."}
           for a, b in ((12, 30), (20, 5), (31, 24), (7, 45))]
# The same answers to other prompts: as many examples, with as many answer positions each — only what they
# hold differs (a store keyed on counts reads back the first one's distributions for them).
SHIFTED = [{"prompt": r["prompt"], "completion": s["completion"]} for r, s in zip(RECORDS, RECORDS[1:] + RECORDS[:1])]


def teacher_model():
    torch.manual_seed(0)
    return GPT(get_config("tiny", vocab_size=TOK.vocab_size)).eval()


def test_the_topk_store_reads_back_only_for_the_same_examples(tmp_path):
    teacher, path = teacher_model(), tmp_path / "store.pt"
    first, built = cached_topk_store(teacher, as_examples(RECORDS, TOK), TOK, 8, path)
    assert built
    again, built = cached_topk_store(teacher, as_examples(RECORDS, TOK), TOK, 8, path)
    assert not built, "the same examples: the store must be read back, not rebuilt"
    assert all(torch.equal(first[k], again[k]) for k in ("ids", "logprobs", "offsets"))
    assert [sum(e["mask"]) for e in as_examples(SHIFTED, TOK)] == [sum(e["mask"]) for e in as_examples(RECORDS, TOK)]
    other, built = cached_topk_store(teacher, as_examples(SHIFTED, TOK), TOK, 8, path)
    assert built, "as many examples with as many answer positions, but other ones: the store must be rebuilt"
    assert not torch.equal(other["logprobs"], first["logprobs"])
    _, built = cached_topk_store(teacher, as_examples(SHIFTED, TOK), TOK, 4, path)
    assert built, "another k: rebuilt"


def test_a_students_cache_key_holds_what_its_pool_holds_not_its_size(tmp_path):
    profile = stages.PROFILES["quick"]
    keys = []
    for records in (RECORDS, SHIFTED):
        path = tmp_path / f"pool{len(keys)}.jsonl"
        write_jsonl(path, records)
        ctx = students.Context(profile=profile, kept={"greedy": path}, teacher_id="t", stores={},
                               pools=students.pool_fingerprints({"greedy": path}, RECORDS))
        keys.append(students.make_job(ctx, "seq_kd", 0, 10, None)["settings"])
    assert keys[0] != keys[1], "two pools of as many examples, but other ones, must not share a cached student"
    assert examples_fingerprint(RECORDS) == examples_fingerprint([dict(r) for r in RECORDS])


MICRO = Profile(name="bugclass", teacher_preset="tiny", student_preset="tiny", teacher_steps=2, student_steps=2,
                batch_size=4, n_train=8, n_unlabelled=4, n_test=4, n_heldout=4, n_val=2)


def test_the_teachers_cache_is_reused_only_for_the_same_examples(monkeypatch, capsys):
    first, _ = get_teacher(MICRO, device="cpu")
    get_teacher(MICRO, device="cpu")
    assert "teacher: loaded cached" in capsys.readouterr().out
    real = stages.load_split

    def other_examples(split, profile, tok=None):  # as many training examples, but other ones
        records = real(split, profile, tok)
        return records[1:] + records[:1] if split == "train" else records

    monkeypatch.setattr(stages, "load_split", other_examples)
    get_teacher(MICRO, device="cpu")
    assert "was made with other settings; rebuilding" in capsys.readouterr().out
