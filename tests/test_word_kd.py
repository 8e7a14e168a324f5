"""Word-level KD online and offline (minikd/word_kd.py): the objectives, the top-k store; and what they cost
(minikd/kd_cost.py): the storage table and the step timings."""

import pytest
import torch

from minikd.data import IGNORE_INDEX, SFTData, collate
from minikd.losses import kd_loss, topk_kd_loss
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, accumulate_gradients, train
from minikd.kd_cost import step_costs, storage_costs
from minikd.word_kd import (TopkStoreError, answer_positions, build_topk_store, gather_topk, ids_dtype_for,
                            kl_by_example, kl_grad_norms, load_topk_store, mean_kl, run_teacher, topk_mass,
                            topk_objective, word_kd_objective)

TOK = Tokenizer.default()
PAIRS = [("Sort 3 1 2.", "1 2 3"), ("What is 2 + 2?", "4"),
         ("Add 12 + 30 step by step.", "2+0=2. 1+3=4. Sum: 42."),
         ("Sort 9 7.", "Sorted: 7 9."), ("What is 10 + 5?", "10 + 5 = 15"), ("Sort 5 5 1.", "1, 5, 5")]


def make_examples():
    out = []
    for i, (p, c) in enumerate(PAIRS):
        ids, mask = TOK.render(p, c)
        out.append({"id": i, "prompt": p, "completion": c, "ids": ids, "mask": mask})
    return out


def tiny(seed, **kw):
    torch.manual_seed(seed)
    return GPT(get_config("tiny", vocab_size=TOK.vocab_size, **kw)).eval()


@pytest.fixture
def setup():
    examples = make_examples()
    teacher, student = tiny(1, n_embd=32), tiny(2)
    batch = SFTData(examples, TOK.pad_id, batch_size=4, seed=0).get_batch(0)
    return examples, teacher, student, batch


# --- online ---------------------------------------------------------------------------------------------


def test_online_objective_is_kd_loss_on_the_teachers_logits(setup):
    _, teacher, student, batch = setup
    got = word_kd_objective(teacher, temperature=2.0, alpha=0.3)(student, batch)
    with torch.no_grad():
        t = teacher(batch["inputs"])
    want = kd_loss(student(batch["inputs"]), t, batch["targets"], temperature=2.0, alpha=0.3, reduction="sum")
    torch.testing.assert_close(got, want)
    rev = word_kd_objective(teacher, 2.0, 0.3, kl="reverse")(student, batch)
    want_rev = kd_loss(student(batch["inputs"]), t, batch["targets"], 2.0, 0.3, "sum", "reverse")
    torch.testing.assert_close(rev, want_rev)


def test_online_training_updates_the_student_never_the_teacher(setup):
    examples, teacher, student, _ = setup
    teacher.train()  # even a teacher left in train mode is run in eval mode by the objective
    before_t = {k: v.clone() for k, v in teacher.state_dict().items()}
    before_s = {k: v.clone() for k, v in student.state_dict().items()}
    data = SFTData(examples, TOK.pad_id, batch_size=4, seed=0)
    train(student, data.get_batch, word_kd_objective(teacher, 2.0, 0.5),
          TrainConfig(steps=3, warmup=1, log_every=0, device="cpu"))
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before_t.items())
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training
    assert any(not torch.equal(v, student.state_dict()[k]) for k, v in before_s.items())


def test_teacher_runs_in_eval_mode_so_dropout_never_changes_the_target(setup):
    _, _, student, batch = setup
    teacher = tiny(1, n_embd=32, dropout=0.5).train()
    obj = word_kd_objective(teacher, 1.0, 1.0)
    assert torch.equal(obj(student, batch), obj(student, batch))
    assert not run_teacher(teacher, batch["inputs"]).requires_grad


def test_student_gradient_flows_through_the_online_loss(setup):
    _, teacher, student, batch = setup
    student.train()
    word_kd_objective(teacher, 2.0, 1.0)(student, batch).backward()  # alpha = 1: the KL term alone
    assert all(p.grad is not None for p in student.parameters())
    assert student.wte.weight.grad.abs().sum() > 0


# --- the top-k store ------------------------------------------------------------------------------------


def test_store_round_trip_shapes_dtypes_and_metadata(setup, tmp_path):
    examples, teacher, _, _ = setup
    path = tmp_path / "store.pt"
    built = build_topk_store(teacher, examples, TOK.pad_id, k=5, temperature=2.0, path=path,
                             fingerprint=TOK.fingerprint)
    store = load_topk_store(path, expect_fingerprint=TOK.fingerprint, expect_examples=examples)
    n = sum(answer_positions(e) for e in examples)
    assert n == sum(sum(e["mask"][1:]) for e in examples)
    assert store["ids"].shape == store["logprobs"].shape == (n, 5)
    assert store["ids"].dtype == torch.int16 and store["logprobs"].dtype == torch.float16
    assert (store["k"], store["temperature"], store["fingerprint"]) == (5, 2.0, TOK.fingerprint)
    assert (store["vocab_size"], store["n_examples"]) == (TOK.vocab_size, len(examples))
    assert store["offsets"].tolist()[-1] == n and store["offsets"][0] == 0
    assert torch.equal(built["ids"], store["ids"])
    # example 2's rows are the teacher's top 5 at T = 2 at its answer positions, most likely first
    b = collate([examples[2]], TOK.pad_id)
    with torch.no_grad():
        logp = torch.log_softmax(teacher(b["inputs"])[0] / 2.0, dim=-1)  # (T, V)
    want_lp, want_ids = logp[b["targets"][0] != IGNORE_INDEX].topk(5)
    rows = slice(int(store["offsets"][2]), int(store["offsets"][3]))
    assert torch.equal(store["ids"][rows].long(), want_ids)
    torch.testing.assert_close(store["logprobs"][rows].float(), want_lp, atol=2e-3, rtol=1e-3)  # fp16
    assert 0 < topk_mass(store) <= 1


def test_ids_are_int16_when_the_vocabulary_fits_else_int32():
    assert ids_dtype_for(297) == torch.int16 and ids_dtype_for(32767) == torch.int16
    assert ids_dtype_for(50257) == torch.int32


def test_gather_lays_the_stored_rows_under_the_targets(setup, tmp_path):
    examples, teacher, _, batch = setup
    store = build_topk_store(teacher, examples, TOK.pad_id, 3, 1.0, tmp_path / "s.pt", TOK.fingerprint)
    ids, lp = gather_topk(store, batch["index"], batch["targets"])
    assert ids.shape == lp.shape == (*batch["targets"].shape, 3)
    row0 = batch["index"][0].item()
    keep = batch["targets"][0] != IGNORE_INDEX
    assert torch.equal(ids[0][keep], store["ids"][int(store["offsets"][row0]):int(store["offsets"][row0 + 1])])
    assert (ids[0][~keep] == 0).all()


def test_with_k_equal_to_vocab_offline_equals_online(setup, tmp_path):
    examples, teacher, student, batch = setup
    V = TOK.vocab_size
    online = word_kd_objective(teacher, temperature=2.0, alpha=0.5)(student, batch)
    full32 = build_topk_store(teacher, examples, TOK.pad_id, V, 2.0, tmp_path / "f32.pt", TOK.fingerprint,
                              logprob_dtype=torch.float32)
    torch.testing.assert_close(topk_objective(full32, alpha=0.5)(student, batch), online, rtol=1e-5, atol=1e-4)
    full16 = build_topk_store(teacher, examples, TOK.pad_id, V, 2.0, tmp_path / "f16.pt", TOK.fingerprint)
    torch.testing.assert_close(topk_objective(full16, alpha=0.5)(student, batch), online, rtol=2e-3, atol=0)


def test_small_k_is_topk_kd_loss_and_differs_from_online(setup, tmp_path):
    examples, teacher, student, batch = setup
    store = build_topk_store(teacher, examples, TOK.pad_id, 4, 2.0, tmp_path / "s.pt", TOK.fingerprint)
    ids, lp = gather_topk(store, batch["index"], batch["targets"])
    want = topk_kd_loss(student(batch["inputs"]), ids, lp.float(), batch["targets"], 2.0, 0.5, "sum")
    got = topk_objective(store, alpha=0.5)(student, batch)
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, word_kd_objective(teacher, 2.0, 0.5)(student, batch))


def test_stored_logprobs_can_be_retempered(setup, tmp_path):
    examples, teacher, student, batch = setup
    at1 = build_topk_store(teacher, examples, TOK.pad_id, 6, 1.0, tmp_path / "t1.pt", TOK.fingerprint,
                           logprob_dtype=torch.float32)
    at2 = build_topk_store(teacher, examples, TOK.pad_id, 6, 2.0, tmp_path / "t2.pt", TOK.fingerprint,
                           logprob_dtype=torch.float32)
    assert torch.equal(at1["ids"], at2["ids"])  # the top k do not depend on T
    torch.testing.assert_close(topk_objective(at1, temperature=2.0)(student, batch),
                               topk_objective(at2)(student, batch), rtol=1e-5, atol=1e-4)


def test_offline_objective_accumulates_gradients_exactly(setup, tmp_path):
    examples, teacher, student, batch = setup
    store = build_topk_store(teacher, examples, TOK.pad_id, 4, 2.0, tmp_path / "s.pt", TOK.fingerprint)
    obj = topk_objective(store)
    grads = []
    for n in (1, 2):
        student.zero_grad()
        accumulate_gradients(student, batch, obj, grad_accum=n)  # "index" is split with the batch
        grads.append(student.wte.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_store_errors_are_clear(setup, tmp_path):
    examples, teacher, student, batch = setup
    with pytest.raises(TopkStoreError, match="no such top-k store"):
        load_topk_store(tmp_path / "missing.pt")
    path = tmp_path / "s.pt"
    build_topk_store(teacher, examples, TOK.pad_id, 3, 1.0, path, TOK.fingerprint)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(TopkStoreError, match="truncated or corrupted"):
        load_topk_store(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(TopkStoreError, match="truncated or corrupted"):
        load_topk_store(tmp_path / "junk.pt")
    torch.save({"model": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(TopkStoreError, match="not a minikd top-k store"):
        load_topk_store(tmp_path / "other.pt")
    with pytest.raises(TopkStoreError, match="tokenizer in use is abc"):
        load_topk_store(path, expect_fingerprint="abc")
    with pytest.raises(TopkStoreError, match="holds 6 examples but the dataset has 5"):
        load_topk_store(path, expect_examples=examples[:5])
    swapped = [examples[1], examples[0], *examples[2:]]
    with pytest.raises(TopkStoreError, match="example 0 has"):
        load_topk_store(path, expect_examples=swapped)
    store = load_topk_store(path)
    other = SFTData(swapped, TOK.pad_id, 4, seed=0).get_batch(0)  # a batch from other data
    with pytest.raises(TopkStoreError, match="answer positions but the store has"):
        topk_objective(store)(student, other)
    with pytest.raises(ValueError, match="batch\\['index'\\]"):
        topk_objective(store)(student, {"inputs": batch["inputs"], "targets": batch["targets"]})
    with pytest.raises(ValueError, match="k must be between 1 and the vocabulary size"):
        build_topk_store(teacher, examples, TOK.pad_id, TOK.vocab_size + 1, 1.0, path, TOK.fingerprint)


# --- costs ----------------------------------------------------------------------------------------------


def test_storage_table_matches_a_hand_computation(tmp_path):
    # 3 answer positions (2 answer tokens + the end token), V = 10
    ex = {"ids": [0, 1, 2, 3, 4, 5], "mask": [0, 0, 0, 1, 1, 1], "completion": "héllo"}
    rows = {r["what"]: r for r in storage_costs([ex], vocab_size=10, ks=(1, 5))}
    assert rows["full logits fp32"]["bytes_per_example"] == 3 * 10 * 4 == 120
    assert rows["full logits fp16"]["bytes_per_example"] == 60
    assert rows["top-1 (ids + fp16 log-probs)"]["bytes_per_example"] == 3 * 1 * (2 + 2)
    assert rows["top-5 (ids + fp16 log-probs)"]["bytes_per_example"] == 3 * 5 * (2 + 2)
    assert rows["sequence text (seq-KD)"]["bytes_per_example"] == 6  # UTF-8: é is two bytes
    two = storage_costs([ex, {**ex, "mask": [0, 1, 1, 1, 1, 1]}], vocab_size=10, ks=())
    assert two[0]["total_bytes"] == (3 + 5) * 40 and two[0]["bytes_per_example"] == 160


def test_storage_table_measures_a_real_store_file(setup, tmp_path):
    examples, teacher, _, _ = setup
    path = tmp_path / "s.pt"
    build_topk_store(teacher, examples, TOK.pad_id, 8, 1.0, path, TOK.fingerprint)
    rows = storage_costs(examples, TOK.vocab_size, ks=(8,), tokenizer=TOK, store_path=path)
    measured, computed = rows[-1], rows[2]
    assert measured["what"] == "top-8 store file (measured)"
    assert measured["total_bytes"] == path.stat().st_size
    # the file holds the computed bytes plus offsets and metadata
    assert computed["total_bytes"] < measured["total_bytes"] < computed["total_bytes"] + 20_000
    no_text = [{"ids": e["ids"], "mask": e["mask"]} for e in examples]  # decoded from the ids instead
    assert storage_costs(no_text, TOK.vocab_size, ks=(), tokenizer=TOK)[-1]["total_bytes"] == \
        sum(len(c.encode()) for _, c in PAIRS)


def test_step_costs_time_three_methods_and_size_the_teacher_signal(setup, tmp_path):
    examples, teacher, _, _ = setup
    store = build_topk_store(teacher, examples, TOK.pad_id, 4, 2.0, tmp_path / "s.pt", TOK.fingerprint)
    data = SFTData(examples, TOK.pad_id, 4, seed=0)
    batch_list = [data.get_batch(i) for i in range(3)]  # one warm-up batch, two timed repeats
    make_student = lambda: GPT(get_config("tiny", vocab_size=TOK.vocab_size))  # noqa: E731
    rows = step_costs(make_student, teacher, store, batch_list, temperature=2.0)
    by = {r["method"]: r for r in rows}
    assert list(by) == ["plain SFT", "online word-KD", "offline top-4 KD"]
    for r in rows:  # one time per timed repeat (paired across methods), the median of them
        assert len(r["ms_by_repeat"]) == 2 and all(ms > 0 for ms in r["ms_by_repeat"])
        assert r["ms_per_step"] == pytest.approx(sum(r["ms_by_repeat"]) / 2)
        assert r["step_peak_bytes"] is None  # CPU: PyTorch keeps no peak-memory counter
    cells = sum(b["inputs"].numel() for b in batch_list[1:]) / 2
    assert by["online word-KD"]["teacher_signal_bytes"] == int(cells * TOK.vocab_size * 4)
    assert by["offline top-4 KD"]["teacher_signal_bytes"] == int(cells * 4 * (2 + 2))
    assert by["plain SFT"]["teacher_signal_bytes"] == 0 == by["offline top-4 KD"]["teacher_weight_bytes"]
    assert by["online word-KD"]["teacher_weight_bytes"] == 4 * sum(p.numel() for p in teacher.parameters())
    with pytest.raises(ValueError, match="warm-up batch"):
        step_costs(make_student, teacher, store, batch_list[:1])


# --- the lesson's helpers ------------------------------------------------------------------------------


def test_t_squared_keeps_the_kl_gradient_flat():
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(2, 5, 40, generator=g) * 2, torch.randn(2, 5, 40, generator=g) * 2
    y = torch.randint(40, (2, 5), generator=g)
    rows = kl_grad_norms(s, t, y)
    assert [r["T"] for r in rows] == [1.0, 2.0, 4.0, 8.0]
    with_t2 = [r["with_t2"] for r in rows]
    assert max(with_t2) / min(with_t2) < 2  # roughly flat: within a factor 2 from T = 1 to T = 8 ...
    assert rows[-1]["without_t2"] < rows[0]["without_t2"] / 30  # ... while without T^2 it falls ~ 1/T^2
    for r in rows:
        assert r["without_t2"] * r["T"] ** 2 == pytest.approx(r["with_t2"])


def test_mean_kl_is_zero_for_the_teacher_itself(setup):
    examples, teacher, student, _ = setup
    assert mean_kl(teacher, teacher, examples, TOK.pad_id) == pytest.approx(0.0, abs=1e-6)
    assert mean_kl(teacher, student, examples, TOK.pad_id) > 0


def test_kl_by_example_sums_the_kl_over_each_examples_answer_positions(setup):
    examples, teacher, student, _ = setup
    rows = kl_by_example(teacher, student, examples, TOK.pad_id, temperature=2.0, batch_size=4)
    assert [n for _, n in rows] == [answer_positions(e) for e in examples]
    b = collate([examples[3]], TOK.pad_id)
    keep = b["targets"][0] != IGNORE_INDEX
    with torch.no_grad():
        want = kd_loss(student(b["inputs"]), teacher(b["inputs"]), b["targets"], 2.0, 1.0, "sum") / 4.0
    assert rows[3][0] == pytest.approx(float(want), rel=1e-4)  # alpha = 1: T^2 * KL summed, over T^2
    assert int(keep.sum()) == rows[3][1]
    total = sum(kl for kl, _ in rows) / sum(n for _, n in rows)
    assert mean_kl(teacher, student, examples, TOK.pad_id, temperature=2.0) == pytest.approx(total, rel=1e-5)
