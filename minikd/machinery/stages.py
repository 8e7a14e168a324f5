"""The shared stages every later lesson and the main job reuse: load the data, get the (cached) teacher,
train a student with any objective. Part of the machinery: the ideas are in train.py (the loop), data.py and
model.py; this module fixes the sizes and budgets and caches what later steps reuse.

Two profiles name every size and budget in one place:
- `default`: the real run (teacher and student presets, the shipped sets) — minutes on a 2-core CPU;
- `quick`: the same path on tiny models and a slice of the data — seconds; lessons' `--fast` and the tests.

Artefacts go to runs/<profile>/ (git-ignored). The teacher is trained once and cached there: a checkpoint
whose recorded settings differ from the profile's is retrained, never silently reused.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path


from minikd.evaluate import answer_limit
from minikd.machinery.cache import cached_model
from minikd.machinery.labelling import generate_dataset, shard_path
from minikd.seqkd import drop_reason, filter_records
from minikd.runtime import DATA_DIR, runs_dir, seed_all
from minikd.data import SFTData, examples_fingerprint, load_sft, read_jsonl
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, sft_objective, train


@dataclass(frozen=True)
class Profile:
    name: str  # also the folder under runs/
    teacher_preset: str  # model.PRESETS name of the teacher
    student_preset: str  # model.PRESETS name of every student
    teacher_overrides: tuple = ()  # (field, value) pairs changed on the teacher preset
    student_overrides: tuple = ()  # (field, value) pairs changed on the student preset
    teacher_steps: int = 1000  # teacher optimizer steps (700 left the teacher at 94 % on the test set)
    student_steps: int = 400  # steps of EVERY student (same budget for every method)
    batch_size: int = 64  # sequences per step, teacher and students
    teacher_lr: float = 3e-3  # the teacher's peak learning rate
    student_lr: float = 1e-2  # every student's peak learning rate (a 127k-parameter model takes a larger step)
    n_train: int | None = None  # first n records of data/train.jsonl (None = all)
    n_unlabelled: int | None = None  # first n prompts of data/unlabelled.jsonl
    n_test: int | None = None  # first n records of data/test.jsonl
    n_heldout: int | None = None  # first n records of data/heldout.jsonl
    n_val: int = 400  # the last n training records: the validation slice that chooses word-KD's T and alpha
    block_size: int = 128  # context of both models
    length_groups: int = 4  # micro-batches of similar-length rows per step: less padding, the same gradient
    curve_points: int = 8  # test-accuracy measurements along each student's run (the learning curve)

    def teacher_key(self) -> dict:
        """The profile as a teacher's cache key: every field but those that only shape the students' reports."""
        return {k: v for k, v in asdict(self).items() if k not in ("curve_points",)}

    def teacher_config(self, vocab_size: int):
        return get_config(self.teacher_preset, vocab_size=vocab_size, block_size=self.block_size,
                          **dict(self.teacher_overrides))

    def student_config(self, vocab_size: int):
        return get_config(self.student_preset, vocab_size=vocab_size, block_size=self.block_size,
                          **dict(self.student_overrides))


PROFILES = {
    "default": Profile(name="default", teacher_preset="teacher", student_preset="student"),
    "quick": Profile(name="quick", teacher_preset="tiny", student_preset="tiny",
                     teacher_overrides=(("n_embd", 32),), teacher_steps=100, student_steps=30,
                     batch_size=16, teacher_lr=1e-2, n_train=256, n_unlabelled=64, n_test=48, n_heldout=24,
                     n_val=32, curve_points=4),
}


def get_profile(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def profile_dir(profile: Profile) -> Path:
    d = runs_dir() / profile.name
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------------------------------------------
# Data

def data_fingerprint() -> str:
    """A hash of data/world.json (which holds every shipped split's sha256): new data, new teacher."""
    return hashlib.sha256((DATA_DIR / "world.json").read_bytes()).hexdigest()[:16]


def load_split(split: str, profile: Profile, tok: Tokenizer | None = None):
    """Records of a shipped split, cut to the profile's size.

    train/test/heldout come back tokenized (dicts with "ids" and "mask" added by load_sft);
    unlabelled comes back as plain records (prompts only).
    """
    limit = {"train": profile.n_train, "unlabelled": profile.n_unlabelled, "test": profile.n_test,
             "heldout": profile.n_heldout}[split]
    path = DATA_DIR / f"{split}.jsonl"
    if split == "unlabelled":
        records = list(read_jsonl(path))
        return records[:limit] if limit else records
    return load_sft(path, tok or Tokenizer.default(), profile.block_size, limit=limit)[0]


# ---------------------------------------------------------------------------------------------------
# Training a model on stored (prompt, completion) examples with any objective

def train_model(config, examples: list[dict], steps: int, profile: Profile, *, lr: float, seed: int = 0,
                objective=sft_objective, ckpt_path: Path | None = None, device: str = "auto",
                log_every: int | None = None, meta: dict | None = None, tok: Tokenizer | None = None,
                eval_fn=None, eval_every: int = 0, resume: bool = False) -> tuple[GPT, list[dict]]:
    """Build a fresh model from `config` (seeded) and train it on `examples` with `objective`.

    Batches are drawn by SFTData, seeded by (seed, step): every method sees the same number of
    sequences per step and, for the same example pool, the same sequences.
    eval_fn(model) -> dict, every `eval_every` steps and at the end: its numbers join the history (a curve).
    ckpt_path: save there (every tenth of the run); resume=True continues a checkpoint found there, which
    train() refuses when it was made with other settings.
    Returns (model in eval mode, training history).
    """
    tok = tok or Tokenizer.default()
    seed_all(seed)
    model = GPT(config)
    data = SFTData(examples, tok.pad_id, profile.batch_size, seed=seed, vocab_size=config.vocab_size)
    cfg = TrainConfig(steps=steps, lr=lr, warmup=max(1, steps // 20), device=device, seed=seed,
                      length_groups=min(profile.length_groups, profile.batch_size),
                      log_every=log_every if log_every is not None else max(1, steps // 5), eval_every=eval_every,
                      ckpt_path=str(ckpt_path) if ckpt_path else None, ckpt_every=max(1, steps // 10),
                      resume=resume)
    history = train(model, data.get_batch, objective, cfg, eval_fn=eval_fn, fingerprint=tok.fingerprint, meta=meta)
    return model, history


def get_teacher(profile: Profile | str = "default", device: str = "auto", retrain: bool = False,
                seed: int = 0) -> tuple[GPT, dict]:
    """The profile's teacher: loaded from runs/<profile>/teacher.pt, or trained (masked SFT on the
    labelled training set) and saved there. Returns (model in eval mode, info dict).
    The cache key holds the profile, the seed, a hash of data/world.json and of the examples themselves:
    new data, new teacher."""
    profile = get_profile(profile)
    tok = Tokenizer.default()
    path = profile_dir(profile) / "teacher.pt"
    train_set = load_split("train", profile, tok)
    settings = {"profile": profile.teacher_key(), "seed": seed, "data": data_fingerprint(),
                "examples": examples_fingerprint(train_set)}  # the same examples, not merely as many

    def build():
        print(f"teacher: training the {profile.teacher_preset} preset on {len(train_set)} labelled examples "
              f"for {profile.teacher_steps} steps (cached at {path})")
        t0 = time.perf_counter()
        model, history = train_model(profile.teacher_config(tok.vocab_size), train_set, profile.teacher_steps,
                                     profile, lr=profile.teacher_lr, seed=seed, device=device, tok=tok)
        return model, {"train_seconds": time.perf_counter() - t0}, history

    return cached_model(path, settings, build, tok, device=device, label="teacher", rebuild=retrain)


def train_student(profile: Profile, tok: Tokenizer, examples: list[dict], seed: int = 0, device: str = "auto",
                  objective=sft_objective, steps: int | None = None, **train_kw):
    """A student of the profile's preset trained on `examples` at the students' learning rate and batch, for
    the profile's budget unless `steps` says otherwise, seeded, with `objective` (train_kw: log_every, eval_fn,
    ... as train_model takes them). The one way a student is made: the lessons (through lessons/kit.py) and the
    main job (students.student_job) both call it. Returns (model, history)."""
    return train_model(profile.student_config(tok.vocab_size), examples, steps or profile.student_steps, profile,
                       lr=profile.student_lr, seed=seed, objective=objective, device=device, tok=tok, **train_kw)


def student_on(name: str, examples: list[dict], profile: Profile, tok: Tokenizer, seed: int, device: str = "auto"):
    """train_student, said aloud (lessons 9 and 12); an untrained student, said so, when no example is left
    (a filter can drop them all)."""
    if not examples:
        print(f"  {name}: no examples left, so this student stays untrained")
        seed_all(seed)
        return GPT(profile.student_config(tok.vocab_size)).eval()
    print(f"  {name}: {len(examples)} examples, {profile.student_steps} steps x {profile.batch_size}")
    return train_student(profile, tok, examples, seed, device, log_every=0)[0]


def usable_answers(raw: list[dict], tok: Tokenizer, block_size: int) -> tuple[list[dict], Counter]:
    """The teacher's answers a student may train on (seqkd.filter_records, no verifier) and the counts. The
    --fast teacher (a few steps) may end no answer at all: then, so that the same path still runs, the
    cut-off ones are kept too, said aloud — never do this for real. The one rule every lesson follows."""
    kept, counts = filter_records(raw, lambda r: drop_reason(r, tok, block_size, verify=False))
    if raw and not kept:
        print("  (no answer ended: the --fast teacher is barely trained. To run the same path anyway the student "
              "trains on the cut-off answers — never do this for real.)")
        kept, _ = filter_records(raw, lambda r: drop_reason(r, tok, block_size, verify=False, drop_truncated=False))
    return kept, counts


# ---------------------------------------------------------------------------------------------------
# The teacher's stored answers, and the progress lines of the main job

def stage(n: int, title: str) -> float:
    """Print the main job's stage header; returns the start time."""
    print(f"\n== stage {n}: {title} ==", flush=True)
    return time.perf_counter()


def note(did: list | None, what: str) -> None:
    """Record what this rank did (results.json's "ranks")."""
    if did is not None:
        did.append(what)


CHUNK = 2048  # prompts generated (and appended to disk) at a time


def data_paths(profile) -> dict[str, Path]:
    out = profile_dir(profile)
    return {"greedy": out / "teacher_greedy.jsonl", "beam": out / "teacher_beam.jsonl",
            "inter": out / "teacher_seq_inter.jsonl", "unlabelled": out / "teacher_unlabelled.jsonl",
            "test": out / "teacher_test.jsonl"}


def prompt_records(records: list[dict]) -> list[dict]:
    """Prompts as the teacher sees them (with the ground truth, which seq-inter needs, when there is one)."""
    keep = ("id", "task", "prompt", "completion", "answer")
    return [{k: r[k] for k in keep if k in r} for r in records]


def teacher_greedy(profile, teacher, tok, split: str, rank: int = 0, world_size: int = 1) -> Path:
    """The teacher's greedy answers to a split's prompts ("train", "unlabelled", "test"), stored once under
    runs/<profile>/ (resumable; reused while teacher and settings are the same). The main job and the lessons
    that need them (11, 12) read the same file. Returns its path (this rank's shard when world_size > 1)."""
    path = data_paths(profile)["greedy" if split == "train" else split]
    generate_dataset(teacher, tok, prompt_records(load_split(split, profile, tok)), path, method="greedy",
                     teacher_ckpt=str(profile_dir(profile) / "teacher.pt"), chunk=CHUNK, stale="restart", rank=rank,
                     world_size=world_size, max_new_tokens=answer_limit(load_split("train", profile, tok)))
    return shard_path(path, rank, world_size)
