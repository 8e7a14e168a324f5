"""The device policy and what runs in float32 under autocast (minikd/device.py), checked without a GPU.

CPU bf16 autocast runs the same code paths as CUDA's: the model's float32 head, the float32 teacher forward,
the losses. The policy's choice per card is checked against mocked capabilities (a T4, an A100, an H100,
an Apple laptop, a plain CPU) by replacing torch's own queries.
"""

import pytest
import torch

from minikd import device as device_mod
from minikd.data import SFTData
from minikd.device import device_policy, get_device
from minikd.losses import masked_nll
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import CheckpointError, TrainConfig, train
from minikd.word_kd import build_topk_store, teacher_topk, topk_objective, word_kd_objective

TOK = Tokenizer.default()
PAIRS = [("Sort 3 1 2.", "1 2 3"), ("What is 2 + 2?", "4"), ("Add 12 + 30 step by step.", "2+0=2. 1+3=4. Sum: 42."),
         ("Sort 9 7.", "Sorted: 7 9."), ("What is 10 + 5?", "10 + 5 = 15"), ("Sort 5 5 1.", "1, 5, 5")]


def examples():
    return [dict(zip(("ids", "mask"), TOK.render(p, c)), id=i, prompt=p, completion=c) for i, (p, c) in enumerate(PAIRS)]


def tiny(seed, **kw):
    torch.manual_seed(seed)
    return GPT(get_config("tiny", vocab_size=TOK.vocab_size, **kw)).eval()


def bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def batch():
    return SFTData(examples(), TOK.pad_id, batch_size=4, seed=0).get_batch(0)


# --- float32 where it matters ---------------------------------------------------------------------------


def head_in_float32(model, inputs):
    """The reference: the blocks under bf16 autocast, then the final LayerNorm and output layer in float32."""
    seen = {}
    hook = model.ln_f.register_forward_pre_hook(lambda m, args: seen.update(h=args[0]))
    with bf16(), torch.no_grad():
        got = model(inputs)
    hook.remove()
    with torch.no_grad():
        want = model.lm_head(model.ln_f(seen["h"].float()))  # outside autocast: float32 all through
    return got, want


def test_logits_under_bf16_autocast_come_from_a_float32_head():
    model, b = tiny(0), batch()
    got, want = head_in_float32(model, b["inputs"])
    assert got.dtype == torch.float32
    assert not torch.equal(got.bfloat16().float(), got), "logits are bf16 numbers widened to float32"
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_loss_under_bf16_autocast_is_computed_from_float32_logits():
    model, b = tiny(0), batch()
    got, want = head_in_float32(model, b["inputs"])
    with bf16():
        loss = masked_nll(got, b["targets"])
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, masked_nll(want, b["targets"]), rtol=0, atol=1e-6)


def test_stored_targets_do_not_depend_on_an_outer_autocast():
    """The teacher's forward that produces a target runs outside autocast, wherever it is called from."""
    teacher = tiny(1, n_embd=32)
    plain = teacher_topk(teacher, examples(), TOK.pad_id, k=5, temperature=1.0, logprob_dtype=torch.float32)
    with bf16():
        inside = teacher_topk(teacher, examples(), TOK.pad_id, k=5, temperature=1.0, logprob_dtype=torch.float32)
    assert torch.equal(plain[0], inside[0]) and torch.equal(plain[1], inside[1])


def test_online_and_offline_word_kd_agree_under_autocast(tmp_path):
    """Online (the teacher in the loop, under the student's autocast) and offline (a float32 store, k = V)
    give the same loss: the student learns from the same targets either way."""
    teacher, student, b = tiny(1, n_embd=32), tiny(2), batch()
    store = build_topk_store(teacher, examples(), TOK.pad_id, k=TOK.vocab_size, temperature=2.0,
                             path=tmp_path / "s.pt", fingerprint=TOK.fingerprint, logprob_dtype=torch.float32)
    with bf16(), torch.no_grad():
        online = word_kd_objective(teacher, temperature=2.0, alpha=1.0)(student, b)
        offline = topk_objective(store, alpha=1.0)(student, b)
    torch.testing.assert_close(online, offline, rtol=1e-5, atol=1e-5)


# --- the policy, per card -------------------------------------------------------------------------------


def fake_machine(monkeypatch, cuda=False, capability=(0, 0), mps=False, old_torch=False):
    """Replace torch's capability queries by a described machine (and forget the test session's pin)."""
    monkeypatch.delenv("MINIKD_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)

    def is_bf16_supported(including_emulation=True):  # torch's rule: native from sm80, emulated before
        return capability >= (8, 0) or (including_emulation and cuda)

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", (lambda: cuda) if old_torch else is_bf16_supported)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize("card, capability, precision", [("T4", (7, 5), "fp16"), ("V100", (7, 0), "fp16"),
                                                          ("A100", (8, 0), "bf16"), ("H100", (9, 0), "bf16")])
def test_cuda_cards_get_bf16_only_where_it_is_native(monkeypatch, card, capability, precision):
    fake_machine(monkeypatch, cuda=True, capability=capability)
    p = device_policy("auto")
    assert (p.device.type, p.precision, p.key) == ("cuda", precision, f"cuda/{precision}"), card
    assert p.grad_scaler == (precision == "fp16") and p.non_blocking
    assert p.autocast_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@pytest.mark.parametrize("capability, precision", [((7, 5), "fp16"), ((8, 6), "bf16")])
def test_older_torch_without_including_emulation_decides_by_compute_capability(monkeypatch, capability, precision):
    fake_machine(monkeypatch, cuda=True, capability=capability, old_torch=True)
    assert device_policy("auto").precision == precision


def test_a_mac_gets_mps_in_float32_with_blocking_copies(monkeypatch):
    fake_machine(monkeypatch, mps=True)
    p = device_policy("auto")
    assert (p.device.type, p.precision, p.grad_scaler, p.non_blocking) == ("mps", "fp32", False, False)
    assert p.autocast_dtype is None


def test_a_cpu_gets_float32_unless_asked(monkeypatch):
    fake_machine(monkeypatch)
    p = device_policy("auto")
    assert (p.device.type, p.precision, p.grad_scaler, p.non_blocking) == ("cpu", "fp32", False, False)
    assert device_policy("cpu", "bf16").autocast_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of"):
        device_policy("cpu", "int8")


def test_the_test_session_pins_auto_to_the_cpu(monkeypatch):
    """Even where CUDA is there, `--device auto` in the tests means the CPU (tests/conftest.py)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device("auto").type == "cpu"
    assert device_mod.get_device("auto").type == "cpu"


# --- training under each CPU precision; resume refuses another dtype ------------------------------------


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_training_learns_under_cpu_autocast(precision):
    """The same loop under bf16 autocast, and under fp16 with a GradScaler (the T4 path), learns."""
    data = SFTData(examples(), TOK.pad_id, batch_size=6, seed=0)
    hist = train(tiny(0), data.get_batch, cfg=TrainConfig(steps=25, lr=1e-2, warmup=2, device="cpu",
                                                          precision=precision, log_every=0))
    assert hist[-1]["loss"] < 0.7 * hist[0]["loss"]


def test_resume_refuses_another_device_dtype(tmp_path):
    data, path = SFTData(examples(), TOK.pad_id, batch_size=6, seed=0), tmp_path / "run.pt"
    cfg = dict(steps=4, warmup=1, device="cpu", log_every=0, ckpt_path=str(path), ckpt_every=2)
    train(tiny(0), data.get_batch, cfg=TrainConfig(**cfg))
    with pytest.raises(CheckpointError, match="device: checkpoint 'cpu/fp32' vs now 'cpu/bf16'"):
        train(tiny(0), data.get_batch, cfg=TrainConfig(**cfg, precision="bf16", resume=True))


# --- caches: another device type or dtype is another artefact -------------------------------------------


@pytest.mark.parametrize("capability, key", [((7, 5), "cuda/fp16"), ((9, 0), "cuda/bf16")])
def test_cache_keys_change_with_device_and_dtype(monkeypatch, capability, key):
    from minikd.machinery.cache import device_settings
    cpu = device_settings({"seed": 0}, "cpu")
    fake_machine(monkeypatch, cuda=True, capability=capability)
    assert cpu == {"seed": 0, "device": "cpu/fp32"} and device_settings({"seed": 0}, "auto")["device"] == key


def test_a_model_cached_on_another_device_is_never_reused(tmp_path, monkeypatch):
    """`minikd --device cpu` after `--device cuda`, and back, trains its own model each time."""
    from minikd.machinery import cache
    built = []

    def build():
        built.append(1)
        return tiny(len(built)), {}, []
    path, settings = tmp_path / "teacher.pt", {"profile": "tiny", "seed": 0}
    cache.cached_model(path, settings, build, TOK, device="cpu")  # a CPU run
    cache.cached_model(path, settings, build, TOK, device="cpu")  # reused
    with monkeypatch.context() as m:  # a CUDA run: the policy says cuda/bf16 (the model stays on the CPU here)
        m.setattr(cache, "device_policy", lambda device: type("P", (), {"key": "cuda/bf16"})())
        cache.cached_model(path, settings, build, TOK, device="cpu")
    cache.cached_model(path, settings, build, TOK, device="cpu")  # back on the CPU
    assert len(built) == 3


def test_a_topk_store_from_another_device_is_rebuilt(tmp_path, monkeypatch):
    from minikd import word_kd
    from minikd.machinery.cache import cached_topk_store
    teacher, path = tiny(1, n_embd=32), tmp_path / "store.pt"
    store, built = cached_topk_store(teacher, examples(), TOK, 4, path)
    assert built and store["device"] == "cpu/fp32"
    assert not cached_topk_store(teacher, examples(), TOK, 4, path)[1]
    with pytest.raises(word_kd.TopkStoreError, match="computed on cpu/fp32, but this run's teacher is on cuda"):
        word_kd.load_topk_store(path, expect_device="cuda/fp32")
    monkeypatch.setattr(word_kd, "store_device", lambda teacher: "cuda/fp32")
    assert cached_topk_store(teacher, examples(), TOK, 4, path)[1]


def test_student_results_are_keyed_by_device():
    from minikd.machinery.stages import get_profile
    from minikd.machinery.students import Context, student_settings
    keys = [student_settings(Context(profile=get_profile("quick"), pools={"ground truth": "p"}, teacher_id="t",
                                     device=d), "gt", 0, 10, None, False)["device"] for d in ("cpu/fp32", "cuda/bf16")]
    assert keys == ["cpu/fp32", "cuda/bf16"]


# --- host syncs: checks once per dataset, stores gathered on the device ---------------------------------


def count_syncs(monkeypatch) -> list:
    """Record every bool / item / tolist of a tensor: each makes the host wait for a GPU."""
    calls = []
    for name in ("__bool__", "item", "tolist", "__int__", "__float__"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *a, _real=real, _n=name: calls.append(_n) or _real(self, *a))
    return calls


def test_token_ids_are_checked_once_per_dataset():
    from minikd.data import check_token_ids
    bad = examples()
    bad[2] = {**bad[2], "ids": bad[2]["ids"][:-1] + [TOK.vocab_size + 3]}
    with pytest.raises(ValueError, match=f"example 2 \\(id 2\\) holds token id {TOK.vocab_size + 3}, outside"):
        SFTData(bad, TOK.pad_id, batch_size=2, vocab_size=TOK.vocab_size)
    check_token_ids(examples(), TOK.vocab_size)


def test_offline_objectives_gather_their_rows_without_host_loops(monkeypatch, tmp_path):
    """topk_objective and uld_objective read a micro-batch's stored rows with tensor indexing: the few host
    syncs left (a check, boolean masks, the loss's own) do not grow with the rows of the batch."""
    from minikd.uld import uld_objective
    teacher, student = tiny(1, n_embd=32), tiny(2)
    store = build_topk_store(teacher, examples(), TOK.pad_id, k=4, temperature=1.0, path=tmp_path / "s.pt",
                             fingerprint=TOK.fingerprint)
    data = SFTData(examples() * 8, TOK.pad_id, batch_size=32, seed=0)
    big = {**data.get_batch(0)}
    big["index"] = big["index"] % len(PAIRS)
    objectives = {"topk": topk_objective(store), "uld": uld_objective(store)}
    for fn in objectives.values():
        fn(student, big)  # the store is placed on the device once
    calls = count_syncs(monkeypatch)
    for name, fn in objectives.items():
        calls.clear()
        fn(student, big)
        assert len(calls) <= 6, (name, calls)


def test_fp16_gradients_are_unscaled_before_clipping_and_the_scaler_is_checkpointed(tmp_path):
    """Under fp16 the GradScaler multiplies the loss by 65536 before backward; the step must divide the
    gradients back before clipping and updating, so the norm it reports is float32's, not 65536 times it."""
    data, path = SFTData(examples(), TOK.pad_id, batch_size=6, seed=0), tmp_path / "run.pt"
    norms = {}
    for precision in ("fp32", "fp16"):
        cfg = TrainConfig(steps=1, warmup=1, device="cpu", precision=precision, log_every=0, ckpt_path=str(path))
        norms[precision] = train(tiny(0), data.get_batch, cfg=cfg)[0]["grad_norm"]
    assert norms["fp16"] == pytest.approx(norms["fp32"], rel=0.05)
    assert torch.load(path, weights_only=True)["scaler"]["scale"] > 1.0


def test_a_device_that_is_not_there_is_a_clear_error(monkeypatch):
    fake_machine(monkeypatch)
    with pytest.raises(ValueError, match="device 'cuda' asked for, but CUDA is not available"):
        get_device("cuda")
    monkeypatch.setenv("MINIKD_DEVICE", "mps")
    with pytest.raises(ValueError, match=r"device 'mps' asked for \(by MINIKD_DEVICE\), but MPS is not available"):
        device_policy("auto")
