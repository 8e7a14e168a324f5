# %% [markdown]
"""Lesson 3 — the one training loop, on a CPU or a CUDA GPU.

Every method in this course ends the same way: the student is fine-tuned with next-token cross-entropy,
-log p(u | s), on the answer tokens u that follow a prompt s (for sequence-level KD, Kim & Rush 2016, u is
the teacher's answer). Token-level KD (Hinton, Vinyals & Dean 2015) only swaps the loss. So minikd has ONE
loop (minikd/train.py) and each method is an *objective*: a function (model, batch) -> summed loss.

What to look at:
  1. a batch: inputs are ids[:-1], targets are ids[1:] (the model predicts the next token everywhere);
  2. the learning-rate schedule, drawn: linear warmup, then cosine decay;
  3. the loss curve, drawn from the history the loop returns (one row per step), and the progress line
     (step, loss, lr, tokens/s, ETA);
  4. a checkpoint: one file, written to a temporary name and renamed; a run stopped half-way and
     resumed from it ends with exactly the weights of a run that never stopped (on the CPU) — checked.

This lesson trains on EVERY token (prompt included) on purpose: lesson 4 shows why distillation
must not, and fixes it with the response mask.

Run:  python -m lessons.l03_training_loop      (--fast: a few steps of a tiny model)
With the `plot` extra (matplotlib) both curves are also saved as PNGs under runs/lessons/.
"""

# %%
import shutil
from pathlib import Path

import torch

from lessons import lesson_parser
from minikd.charts import ascii_chart, save_line_plot
from minikd.data import SFTData, load_sft
from minikd.model import GPT, get_config
from minikd.runtime import DATA_DIR, runs_dir, seed_all
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, get_lr, load_checkpoint, sft_objective, train
from minikd.verdict import check

parser = lesson_parser(__doc__, "tiny model, few steps")
parser.add_argument("--steps", type=int, default=None, help="training steps (default 300, --fast 20)")
args = parser.parse_args()
steps = args.steps or (20 if args.fast else 300)
preset = "tiny" if args.fast else "student"
tok = Tokenizer.default()
tmp = runs_dir() / "lessons" / "l03_checkpoints"  # this lesson's checkpoints, fresh on every run
shutil.rmtree(tmp, ignore_errors=True)
tmp.mkdir(parents=True)


def draw(series: dict[str, tuple[list, list]], ylabel: str, png_name: str, title: str) -> None:
    """A curve in the terminal, and as a PNG under runs/lessons/ when matplotlib is installed."""
    print(ascii_chart(series, width=60, height=10, xlabel="step", ylabel=ylabel))
    png = save_line_plot(runs_dir() / "lessons" / png_name, series, "step", ylabel, title)
    if png:
        print(f"  (also drawn to {png})")


# %% Step 1: a toy corpus — the shipped training prompts and answers, every token a target.
examples, _ = load_sft(DATA_DIR / "train.jsonl", tok, block_size=128)
examples = examples[:500] if args.fast else examples
for ex in examples:
    ex["mask"] = [1] * len(ex["ids"])  # plain language modelling: predict every next token
data = SFTData(examples, tok.pad_id, batch_size=16 if args.fast else 32, seed=args.seed)
batch = data.get_batch(0)
print(f"Step 1: {len(examples)} sequences; batch 0: inputs {tuple(batch['inputs'].shape)}, "
      f"targets {tuple(batch['targets'].shape)}")
print("  row 0 inputs :", batch["inputs"][0, :12].tolist())
print("  row 0 targets:", batch["targets"][0, :12].tolist(), " (the inputs shifted left by one)\n")

# %% Step 2: the learning rate of every step: linear warmup to cfg.lr, then cosine decay.
cfg = TrainConfig(steps=steps, lr=3e-3, warmup=max(1, steps // 10), device=args.device, seed=args.seed,
                  log_every=max(1, steps // 10), ckpt_path=str(tmp / "lesson3.pt"), ckpt_every=max(1, steps // 2))
lrs = [get_lr(s, cfg) * 1e3 for s in range(cfg.steps)]  # in units of 1e-3: the chart's axis shows one decimal
print(f"Step 2: the learning-rate schedule: {cfg.warmup} warmup steps up to {cfg.lr:.0e}, "
      f"then cosine decay to {cfg.lr * cfg.min_lr_ratio:.0e}")
draw({"learning rate": (list(range(cfg.steps)), lrs)}, "lr × 1000", "l03_lr_schedule.png", "learning-rate schedule")
print()

# %% Step 3: train, and draw the loss curve from the returned history (one row per step).
seed_all(args.seed)
model = GPT(get_config(preset, vocab_size=tok.vocab_size))
print(f"Step 3: training for {cfg.steps} steps ({model.num_params():,} parameters)")
history = train(model, data.get_batch, sft_objective, cfg, fingerprint=tok.fingerprint)
losses = [r["loss"] for r in history]
draw({"training loss (every token)": ([r["step"] for r in history], losses)}, "loss", "l03_loss.png",
     "lesson 3: training loss")
tenth = max(1, len(losses) // 10)
early, late = sum(losses[:tenth]) / tenth, sum(losses[-tenth:]) / tenth
check("the loss falls: the last tenth of the steps averages below the first tenth", late < early,
      f"mean loss of steps 1-{tenth}: {early:.3f}, of the last {tenth}: {late:.3f}", fast=args.fast)
print()

# %% Step 4: stop a second run half-way, resume it from its checkpoint, compare with the run that never stopped.
half = cfg.steps // 2


def stops_half_way(step):
    if step == half:
        raise KeyboardInterrupt  # as if the process was killed while fetching this batch
    return data.get_batch(step)


seed_all(cfg.seed)
interrupted = GPT(get_config(preset, vocab_size=tok.vocab_size))
cfg2 = TrainConfig(**{**cfg.__dict__, "log_every": 0, "ckpt_path": str(tmp / "resume.pt")})
print("Step 4: a second run from the same seed, interrupted half-way, then resumed from its checkpoint")
try:
    train(interrupted, stops_half_way, sft_objective, cfg2, fingerprint=tok.fingerprint)
except KeyboardInterrupt:
    print(f"  interrupted while fetching the batch of step {half + 1}")
saved = load_checkpoint(cfg2.ckpt_path)
print(f"  its checkpoint holds step {saved['step']} "
      f"({Path(cfg2.ckpt_path).stat().st_size / 1e6:.2f} MB, keys {sorted(saved)})")
resumed = GPT(get_config(preset, vocab_size=tok.vocab_size))  # fresh weights, then resume
cfg2.resume = True
train(resumed, data.get_batch, sft_objective, cfg2, fingerprint=tok.fingerprint)
pairs = list(zip(model.state_dict().values(), resumed.state_dict().values()))
resume_equal = all(torch.equal(a, b) for a, b in pairs)
gap = max((a.float() - b.float()).abs().max().item() for a, b in pairs)
check("the resumed run ends with exactly the weights of the uninterrupted run", resume_equal,
      f"{len(pairs)} tensors compared, max |difference| = {gap:.1e}", fast=args.fast)
print()

# %%
print("Check yourself")
print("  1. Why does the loop divide the summed loss by the answer tokens of the whole step,")
print("     not average each micro-batch?")
print("  2. What must get_batch(step) depend on for a resumed run to match an uninterrupted one?")
print("  3. This lesson put a target on every token. Which of them will distillation not want?")
