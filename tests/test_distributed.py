"""Several ranks, one job (minikd.machinery.launch): 2 gloo processes on the CPU, started by the test with the
launcher plain `minikd` uses (the same environment torchrun sets). DDP takes exactly the step one process
takes on the same global batch, and resumes exactly; `minikd generate` on 2 ranks writes the single-process
file, resuming a killed rank's shard; an error on one rank ends the job with a message naming it.

Starting ranks costs seconds (each imports torch), so one launch (the module fixture) does the rank side of
every test here, and each test checks its part of what it left on disk."""

import os
import time

import pytest
import torch

from minikd import ranks
from minikd.machinery import launch
from minikd.machinery.cli import main as cli
from minikd.runtime import DATA_DIR
from minikd.data import IGNORE_INDEX, read_jsonl, write_jsonl
from minikd.machinery.labelling import generate_dataset
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, load_checkpoint, load_model, save_checkpoint, sft_objective, train
from minikd.word_kd import word_kd_objective

V = 12
STEPS = 3  # DDP steps compared with one process
TOL = 1e-5  # max |weight difference| allowed, fp32: the all-reduce sums the ranks' gradients in another order
RANK_TIMEOUT = 600  # seconds a rank waits at a barrier here; the failing launch must end long before


def global_batch(step: int) -> dict:
    """A copy task of 8 rows, seeded by the step. Rank 0 of 2 gets rows 0-3 (5 answer tokens each), rank 1
    rows 4-7 (2 each, the first two of the copy): per-rank normalisation would weigh rank 1's tokens 2.5x
    too much, and rank 1's shorter rows draw fewer dropout numbers (its RNG state drifts from rank 0's)."""
    g = torch.Generator().manual_seed(1000 + step)
    half = torch.randint(1, V, (8, 5), generator=g)
    ids = torch.cat([half, half], dim=1)  # (8, 10)
    targets = ids[:, 1:].clone()  # (8, 9)
    targets[:, :4] = IGNORE_INDEX  # the answer: the copied half
    targets[4:, 6:] = IGNORE_INDEX  # rank 1's rows: only the first 2 tokens of the copy
    return {"inputs": ids[:, :-1], "targets": targets}


def stops_at_2(step: int) -> dict:
    if step == 2:
        raise KeyboardInterrupt  # the run is killed while fetching batch 2
    return global_batch(step)


def model(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return GPT(get_config("tiny", vocab_size=V, n_embd=32, dropout=dropout))


def cfg(**kw):
    base = dict(steps=STEPS, lr=1e-3, warmup=1, length_groups=2, log_every=0, device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


def kd_objective():
    """Online word-level KD against a fixed random teacher (seed 7), T = 2, alpha = 0.5."""
    return word_kd_objective(model(seed=7).eval(), temperature=2.0, alpha=0.5)


def gen_args(folder, out):
    return ["generate", "--teacher", str(folder / "teacher.pt"), "--prompts", str(folder / "prompts.jsonl"),
            "--out", str(folder / out), "--max-new-tokens", "4", "--chunk", "2", "--device", "cpu"]


def on_each_rank(folder) -> None:
    """What every rank runs (the module fixture launches it on 2 ranks)."""
    # (a) DDP: STEPS steps, each rank on its slice of the global batch; rank 0 writes the checkpoint.
    train(model(), global_batch, sft_objective, cfg(ckpt_path=str(folder / "ddp.pt")))
    # ... and the same for online word-level KD (a frozen teacher's KL at every answer token + CE)
    train(model(), global_batch, kd_objective(), cfg(ckpt_path=str(folder / "ddp_wordkd.pt")))
    # (a') exact resume under DDP, with dropout: every rank's RNG state is in the checkpoint.
    train(model(dropout=0.2), global_batch, sft_objective, cfg(steps=4, ckpt_path=str(folder / "straight.pt")))
    try:
        train(model(dropout=0.2), stops_at_2, sft_objective, cfg(steps=4, ckpt_path=str(folder / "resumed.pt"),
                                                                 ckpt_every=1))
    except KeyboardInterrupt:
        pass
    train(model(seed=123, dropout=0.2), global_batch, sft_objective,
          cfg(steps=4, ckpt_path=str(folder / "resumed.pt"), resume=True))
    # (b) `minikd generate` on 2 ranks: each labels its shard (rank 1 resumes its killed one), rank 0 merges.
    assert cli(gen_args(folder, "sharded.jsonl")) == 0
    # The failure check: an error on one rank while the other waits at a barrier.
    if ranks.rank() == 1:
        raise ValueError("a planted error on rank 1")
    ranks.barrier()


@pytest.fixture(scope="module")
def ranks_ran(tmp_path_factory):
    """Prepare a tiny teacher, 7 prompts, the single-process generation and a killed rank-1 shard; then run
    on_each_rank on 2 ranks. Returns (folder, the launch's error, its seconds)."""
    folder = tmp_path_factory.mktemp("ranks")
    tok = Tokenizer.default()
    torch.manual_seed(0)
    teacher = GPT(get_config("tiny", vocab_size=tok.vocab_size))
    save_checkpoint(folder / "teacher.pt", teacher, step=1, fingerprint=tok.fingerprint)
    prompts = [r for _, r in zip(range(7), read_jsonl(DATA_DIR / "test.jsonl"))]
    write_jsonl(folder / "prompts.jsonl", prompts)
    assert cli(gen_args(folder, "single.jsonl")) == 0
    with pytest.raises(KeyboardInterrupt):  # rank 1's shard, killed after its first record
        generate_dataset(load_model(folder / "teacher.pt", tok)[0], tok, prompts, folder / "sharded.jsonl", rank=1,
                         world_size=2, max_new_tokens=4, teacher_ckpt=str(folder / "teacher.pt"), chunk=2,
                         stop_after=1)
    os.environ["MINIKD_RANK_TIMEOUT"] = str(RANK_TIMEOUT)  # the ranks' barrier timeout (read when they start)
    t0 = time.perf_counter()
    try:
        with pytest.raises(launch.RankFailed) as failed:
            launch.launch(on_each_rank, 2, folder)
    finally:
        del os.environ["MINIKD_RANK_TIMEOUT"]
    return folder, str(failed.value), time.perf_counter() - t0


def test_ddp_steps_equal_one_process_on_the_global_batch(ranks_ran):
    """Bug class: each rank dividing its loss by its OWN answer tokens. With DDP's gradient average that is
    right only when every rank holds as many answer tokens; here rank 1 holds 2 per row, rank 0 holds 5."""
    folder, _, _ = ranks_ran
    for objective, ckpt in ((sft_objective, "ddp.pt"), (kd_objective(), "ddp_wordkd.pt")):
        one = model()
        train(one, global_batch, objective, cfg())
        ddp = load_checkpoint(folder / ckpt)
        assert ddp["step"] == STEPS and len(ddp["rng_ranks"]) == 2  # written by rank 0, with both ranks' RNG
        for name, w in one.state_dict().items():
            diff = (w - ddp["model"][name]).abs().max().item()
            assert diff < TOL, f"{ckpt} {name}: 2 ranks differ from one process by {diff:.2e}"


def test_ddp_resumes_exactly_with_every_ranks_rng(ranks_ran):
    """Bug class: a DDP checkpoint holding only rank 0's RNG state. Rank 1 draws other dropout masks after
    resuming, so the weights leave those of the uninterrupted run."""
    folder, _, _ = ranks_ran
    straight, resumed = load_checkpoint(folder / "straight.pt"), load_checkpoint(folder / "resumed.pt")
    assert resumed["step"] == 4
    for name, w in straight["model"].items():
        assert torch.equal(w, resumed["model"][name]), f"{name}: the resumed DDP run differs"


def test_two_ranks_generate_the_single_process_file_resuming_a_killed_shard(ranks_ran):
    folder, _, _ = ranks_ran
    single, merged = list(read_jsonl(folder / "single.jsonl")), list(read_jsonl(folder / "sharded.jsonl"))
    assert [r["prompt_index"] for r in merged] == list(range(7))  # every prompt once: nothing lost or doubled
    for a, b in zip(merged, single):
        assert {**a, "teacher_logprob": None} == {**b, "teacher_logprob": None}
        assert a["teacher_logprob"] == pytest.approx(b["teacher_logprob"], abs=1e-4)


def test_an_error_on_one_rank_ends_the_job_with_its_message(ranks_ran):
    """Rank 0 waits at a barrier while rank 1 fails: the launch ends at once (not after the barrier's
    timeout), naming the rank and its error."""
    _, error, seconds = ranks_ran
    assert "rank 1 of 2 failed" in error and "a planted error on rank 1" in error
    assert seconds < RANK_TIMEOUT


def test_one_process_needs_no_group():
    assert (launch.init(), ranks.rank(), ranks.world_size(), ranks.is_main()) == (1, 0, 1, True)
    assert ranks.all_reduce_sum(2.5) == 2.5 and ranks.gather_objects("x") == ["x"]
    assert ranks.broadcast_object({"a": 1}) == {"a": 1}
    ranks.barrier()


