"""minikd.data: JSONL in and out, bad records named by file/line/field, collate, batches."""

import inspect
import json
import warnings
from collections import Counter

import pytest
import torch
import torch.nn as nn

from minikd.runtime import atomic_open, atomic_write_bytes, mix_seed
from minikd.data import (
    IGNORE_INDEX, DatasetError, SFTData, append_jsonl, batches, collate, load_sft, meta_path, read_jsonl,
    read_meta, write_jsonl, write_meta,
)
from minikd.losses import masked_nll

PAD, PROMPT, RESPONSE, END = 0, 1, 2, 3


class ToyTokenizer:
    """A stand-in with the real tokenizer's interface: one id per character, the same template."""

    pad_id, prompt_id, response_id, end_id = PAD, PROMPT, RESPONSE, END
    vocab_size = 4 + 128
    fingerprint = "toy-v1"

    def encode(self, text):
        return [4 + (ord(c) % 128) for c in text]

    def render(self, prompt, response):
        p, r = self.encode(prompt), self.encode(response)
        ids = [PROMPT] + p + [RESPONSE] + r + [END]
        mask = [0] * (len(p) + 2) + [1] * (len(r) + 1)
        return ids, mask

    def render_prompt(self, prompt):
        return [PROMPT] + self.encode(prompt) + [RESPONSE]


TOK = ToyTokenizer()


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --- reading and writing ---------------------------------------------------------------------------


def test_roundtrip_keeps_unknown_fields_and_unicode(tmp_path):
    records = [{"prompt": "2+2=", "completion": "4", "id": "a", "verified": True, "extra": {"x": [1, 2]}},
               {"prompt": "héllo ✓", "completion": "wörld", "teacher_logprob": -1.25}]
    path = tmp_path / "d.jsonl"
    assert write_jsonl(path, records) == 2
    assert list(read_jsonl(path)) == records
    assert "héllo ✓" in path.read_text(encoding="utf-8")  # readable, not \u-escaped


def test_read_jsonl_streams_and_fails_at_the_bad_line(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", ['{"prompt": "a", "completion": "b"}', '{"prompt": '])
    it = read_jsonl(path)
    assert inspect.isgenerator(it)
    assert next(it) == {"prompt": "a", "completion": "b"}  # the good line arrives before the error
    with pytest.raises(DatasetError, match=r"d\.jsonl:2: invalid JSON") as e:
        next(it)
    assert e.value.line == 2 and e.value.reason == "invalid_json"


@pytest.mark.parametrize("lines, line, pattern", [
    (['{"prompt": "a", "completion": "b"}', "", '{"prompt": "a", "completion": "b"}'], 2, "blank line"),
    (['[1, 2]'], 1, "expected a JSON object, got list"),
    (['{"prompt": "a", "completion": "b"', ], 1, "invalid JSON"),
])
def test_read_jsonl_errors_name_file_and_line(tmp_path, lines, line, pattern):
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DatasetError, match=rf"bad\.jsonl:{line}: {pattern}"):
        list(read_jsonl(path))


def test_invalid_utf8_is_an_error_with_a_line(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b'{"prompt": "a", "completion": "b"}\n{"prompt": "\xff"}\n')
    with pytest.raises(DatasetError, match=r"bin\.jsonl:2: not valid UTF-8"):
        list(read_jsonl(path))


def test_trailing_newline_is_fine_and_missing_one_too(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n', encoding="utf-8")
    assert len(list(read_jsonl(path))) == 1
    path.write_text('{"prompt": "a", "completion": "b"}', encoding="utf-8")
    assert len(list(read_jsonl(path))) == 1


def test_atomic_write_keeps_the_old_file_when_records_fail_midway(tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"prompt": "old", "completion": "file"}])
    before = path.read_bytes()

    def crashing_generation():
        yield {"prompt": "new", "completion": "1"}
        yield {"prompt": "new", "completion": "2"}
        raise RuntimeError("teacher crashed")

    with pytest.raises(RuntimeError, match="teacher crashed"):
        write_jsonl(path, crashing_generation())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]  # no temporary file left behind


def test_write_refuses_nan_and_non_dicts(tmp_path):
    with pytest.raises(ValueError):
        write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "completion": "b", "teacher_logprob": float("nan")}])
    with pytest.raises(TypeError):
        write_jsonl(tmp_path / "d.jsonl", [["prompt", "completion"]])
    assert not (tmp_path / "d.jsonl").exists()


def test_append_jsonl_adds_lines(tmp_path):
    path = tmp_path / "sub" / "gen.jsonl"
    for i in range(3):
        append_jsonl(path, {"prompt": str(i), "completion": "x"}, fsync=(i == 0))
    assert [r["prompt"] for r in read_jsonl(path)] == ["0", "1", "2"]


def test_atomic_open_keeps_the_old_file_when_the_block_raises(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_bytes(path, b"old\n")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_open(path) as f:
            f.write("new, half written")
            f.flush()
            assert (tmp_path / "out.txt.tmp").exists() and path.read_bytes() == b"old\n"  # readers see the old file
            raise RuntimeError("crash")
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary file left behind
    with atomic_open(tmp_path / "sub" / "new.txt") as f:  # the folder is made; text gets "\n" line ends
        f.write("a\nb\n")
    assert (tmp_path / "sub" / "new.txt").read_bytes() == b"a\nb\n"
    with pytest.raises(ValueError, match="mode"):  # appending is not writing a whole new file
        atomic_open(path, "a").__enter__()
    assert path.read_bytes() == b"old\n"


def test_mix_seed_is_stable_and_does_not_collide_like_seed_times_k_plus_step():
    assert mix_seed(0, 0) == 7896617691693857887  # a pinned value: changing the mixer changes every batch
    assert mix_seed(0, 1) == 2918264622725855778
    assert 0 <= mix_seed(2**40, 10**6) < 2**63  # fits torch.manual_seed
    k = 1000  # seed * k + step: seed 0 at step k and seed 1 at step 0 would be the same stream
    assert mix_seed(0, k) != mix_seed(1, 0)
    assert mix_seed(1, 2) != mix_seed(2, 1)


def test_meta_roundtrip(tmp_path):
    path = tmp_path / "d.jsonl"
    assert read_meta(path) is None
    write_meta(path, {"tokenizer": "abc", "k": 8})
    assert meta_path(path).name == "d.jsonl.meta.json"
    assert read_meta(path) == {"tokenizer": "abc", "k": 8}


# --- load_sft: every bad record is named --------------------------------------------------------------

GOOD = '{"prompt": "ab", "completion": "cd"}'


@pytest.mark.parametrize("bad, field, reason, message", [
    ('{"completion": "cd"}', "prompt", "missing_prompt", "missing"),
    ('{"prompt": 7, "completion": "cd"}', "prompt", "not_a_string_prompt", "must be a string, got int"),
    ('{"prompt": "ab"}', "completion", "missing_completion", "missing"),
    ('{"prompt": "ab", "completion": null}', "completion", "not_a_string_completion", "must be a string, got NoneType"),
    ('{"prompt": "ab", "completion": ""}', "completion", "empty_completion", "empty string"),
    ('{"prompt": "ab", "completion": "' + "x" * 20 + '"}', "completion", "too_long", "renders to 25 tokens"),
])
def test_load_sft_names_file_line_and_field(tmp_path, bad, field, reason, message):
    path = write_lines(tmp_path / "train.jsonl", [GOOD, GOOD, bad, GOOD])
    with pytest.raises(DatasetError) as e:
        load_sft(path, TOK, block_size=16)
    assert str(e.value).startswith(f"{path}:3: field '{field}': {message}")
    assert (e.value.line, e.value.field, e.value.reason) == (3, field, reason)


def test_load_sft_renders_and_keeps_the_record(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", ['{"prompt": "ab", "completion": "cd", "id": "q1"}'])
    examples, dropped = load_sft(path, TOK, block_size=16)
    ids, mask = TOK.render("ab", "cd")
    assert examples == [{"prompt": "ab", "completion": "cd", "id": "q1", "ids": ids, "mask": mask}]
    assert dropped == Counter()


def test_context_boundary_block_size_plus_one_ids_fit(tmp_path):
    # "ab" + "cd" renders to 1 + 2 + 1 + 2 + 1 = 7 ids -> 6 (input, target) pairs.
    path = write_lines(tmp_path / "train.jsonl", [GOOD])
    assert len(load_sft(path, TOK, block_size=6)[0][0]["ids"]) == 7
    with pytest.raises(DatasetError, match=r"train\.jsonl:1: field 'completion': renders to 7 tokens"):
        load_sft(path, TOK, block_size=5)


def test_drop_bad_counts_every_reason(tmp_path):
    lines = [GOOD, "{oops", "", '[1]', '{"completion": "x"}', '{"prompt": 1, "completion": "x"}',
             '{"prompt": "a"}', '{"prompt": "a", "completion": 3}', '{"prompt": "a", "completion": ""}',
             '{"prompt": "a", "completion": "' + "z" * 40 + '"}', '{"prompt": "a", "completion": "ok"}']
    path = write_lines(tmp_path / "train.jsonl", lines)
    with pytest.warns(UserWarning, match="dropped 9 bad records"):
        examples, dropped = load_sft(path, TOK, block_size=16, drop_bad=True)
    assert [e["completion"] for e in examples] == ["cd", "ok"]
    assert dropped == Counter({"invalid_json": 1, "blank_line": 1, "not_an_object": 1, "missing_prompt": 1,
                               "not_a_string_prompt": 1, "missing_completion": 1, "not_a_string_completion": 1,
                               "empty_completion": 1, "too_long": 1})


def test_tokenizer_fingerprint_mismatch_is_refused(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [GOOD])
    write_meta(path, {"tokenizer": "toy-v1"})
    assert len(load_sft(path, TOK, block_size=16)[0]) == 1
    write_meta(path, {"tokenizer": "other-tokenizer"})
    for drop_bad in (False, True):  # a whole-file problem: dropping records cannot fix it
        with pytest.raises(DatasetError, match=r"train\.jsonl\.meta\.json: field 'tokenizer': .*other-tokenizer"):
            load_sft(path, TOK, block_size=16, drop_bad=drop_bad)


def test_prompt_set_without_completions(tmp_path):
    path = write_lines(tmp_path / "prompts.jsonl", ['{"prompt": "ab", "id": 1}', '{"prompt": "' + "p" * 20 + '"}'])
    with pytest.raises(DatasetError, match=r"prompts\.jsonl:1: field 'completion': missing"):
        load_sft(path, TOK, block_size=16)
    with pytest.raises(DatasetError, match=r"prompts\.jsonl:2: field 'prompt': renders to 22 tokens"):
        load_sft(path, TOK, block_size=16, require_completion=False)
    examples, _ = load_sft(path, TOK, block_size=32, require_completion=False)
    assert examples[0]["ids"] == TOK.render_prompt("ab") and examples[0]["mask"] == [0, 0, 0, 0]


# --- collate and batches ----------------------------------------------------------------------------


def test_collate_exact_on_a_hand_example():
    a = ([1, 10, 11, 2, 20, 21, 3], [0, 0, 0, 0, 1, 1, 1])  # [P] p p [R] a a [E]
    b = ([1, 12, 2, 22, 3], [0, 0, 0, 1, 1])  # [P] p [R] a [E]
    batch = collate([a, b], pad_id=0)
    assert set(batch) == {"inputs", "targets"}
    assert torch.equal(batch["inputs"], torch.tensor([[1, 10, 11, 2, 20, 21],
                                                      [1, 12, 2, 22, 0, 0]]))
    assert torch.equal(batch["targets"], torch.tensor([[-100, -100, -100, 20, 21, 3],
                                                       [-100, -100, 22, 3, -100, -100]]))
    assert batch["inputs"].dtype == batch["targets"].dtype == torch.long
    # dicts with "ids" and "mask" work the same
    as_dicts = collate([{"ids": a[0], "mask": a[1], "prompt": "x"}, {"ids": b[0], "mask": b[1]}], pad_id=0)
    assert all(torch.equal(batch[k], as_dicts[k]) for k in batch)


def test_collate_rejects_bad_examples():
    with pytest.raises(ValueError, match="empty"):
        collate([], 0)
    with pytest.raises(ValueError, match="example 1: 3 ids but 2 mask values"):
        collate([([1, 2], [0, 1]), ([1, 2, 3], [0, 1])], 0)
    with pytest.raises(ValueError, match="at least 2 ids"):
        collate([([1], [1])], 0)


class CausalToyModel(nn.Module):
    """Tiny causal model: logits at t depend on tokens 0..t (a running mean of embeddings)."""

    def __init__(self, vocab_size, dim=8):
        super().__init__()
        self.emb, self.out = nn.Embedding(vocab_size, dim), nn.Linear(dim, vocab_size)

    def forward(self, idx):  # (B, T) -> (B, T, V)
        x = self.emb(idx).cumsum(dim=1)  # (B, T, dim)
        x = x / torch.arange(1, idx.shape[1] + 1).view(1, -1, 1)
        return self.out(torch.tanh(x))


def test_padding_never_changes_the_loss():
    torch.manual_seed(0)
    model = CausalToyModel(TOK.vocab_size)
    short = TOK.render("1+1=", "2")
    long = TOK.render("123+456=", "579 is the sum")
    alone = collate([short], TOK.pad_id)
    padded = collate([short, long], TOK.pad_id)
    assert padded["inputs"].shape[1] > alone["inputs"].shape[1]
    loss_alone = masked_nll(model(alone["inputs"]), alone["targets"])
    row = {k: v[:1] for k, v in padded.items()}  # the short example, now with padding after it
    loss_padded = masked_nll(model(row["inputs"]), row["targets"])
    torch.testing.assert_close(loss_padded, loss_alone, rtol=0, atol=1e-6)
    # and the batch's summed loss is the sum of the examples' summed losses
    loss_long = masked_nll(model(collate([long], 0)["inputs"]), collate([long], 0)["targets"], reduction="sum")
    total = masked_nll(model(padded["inputs"]), padded["targets"], reduction="sum")
    torch.testing.assert_close(total, loss_alone * 2 + loss_long, rtol=0, atol=1e-5)  # short has 2 answer tokens


def test_all_masked_batch_gives_a_finite_zero_loss_and_a_warning():
    batch = collate([([1, 10, 2], [0, 0, 0])], pad_id=0)
    assert (batch["targets"] == IGNORE_INDEX).all()
    logits = torch.randn(1, 2, 16, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="no answer tokens"):
        loss = masked_nll(logits, batch["targets"])
    assert torch.isfinite(loss) and loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def _examples(n):
    return [TOK.render(f"q{i}", f"a{i}" * (1 + i % 3)) for i in range(n)]


def test_sft_data_batches_depend_only_on_seed_and_step():
    examples = _examples(50)
    data = SFTData(examples, TOK.pad_id, batch_size=4, seed=7)
    assert len(data) == 50
    first = [data.get_batch(s) for s in range(5)]
    resumed = SFTData(examples, TOK.pad_id, batch_size=4, seed=7)  # a fresh object, as after a restart
    for s in (3, 0, 4):  # any order: no hidden state
        b = resumed.get_batch(s)
        assert all(torch.equal(b[k], first[s][k]) for k in ("inputs", "targets", "index"))
    assert not torch.equal(first[0]["index"], first[1]["index"])
    other_seed = SFTData(examples, TOK.pad_id, batch_size=4, seed=8)
    assert not all(torch.equal(other_seed.get_batch(s)["index"], first[s]["index"]) for s in range(5))
    b = first[2]
    assert torch.equal(b["inputs"], collate([examples[i] for i in b["index"].tolist()], TOK.pad_id)["inputs"])


def test_batches_cover_every_example_once_in_order():
    examples = _examples(7)
    got = list(batches(examples, batch_size=3, pad_id=TOK.pad_id))
    assert [b["index"].tolist() for b in got] == [[0, 1, 2], [3, 4, 5], [6]]
    assert torch.equal(got[2]["targets"], collate(examples[6:], TOK.pad_id)["targets"])


def test_jsonl_file_is_plain_json_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}])
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and [json.loads(x) for x in lines[:-1]][1] == {"prompt": "c", "completion": "d"}


def test_load_sft_no_warning_when_nothing_dropped(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [GOOD])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_sft(path, TOK, block_size=16, drop_bad=True)[1] == Counter()


def test_load_sft_limit_reads_only_the_first_records(tmp_path):
    from minikd.tokenizer import Tokenizer
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "Sort 3 1.", "completion": "1 3"}\n{"prompt": "Sort 2 1.", "completion": "1 2"}\n'
                    "not json: never read\n", encoding="utf-8")
    examples, _ = load_sft(path, Tokenizer.default(), 64, limit=2)
    assert [e["completion"] for e in examples] == ["1 3", "1 2"]
    with pytest.raises(DatasetError, match=":3"):
        load_sft(path, Tokenizer.default(), 64)
