"""Lesson 3 — the one training loop, on a CPU or a CUDA GPU.

Every method on the card ends in the same place: "Student SFT: -log p(u | s) — train on answer tokens
only, next-token cross-entropy". Token-level KD only swaps the loss. So minikd has ONE loop
(minikd/train.py) and each method is an *objective*: a function (model, batch) -> summed loss.

What to look at:
  1. a batch: inputs are ids[:-1], targets are ids[1:] (the model predicts the next token everywhere);
  2. the learning-rate schedule: linear warmup, then cosine decay;
  3. the loss falling, with the progress line (step, loss, lr, tokens/s, ETA);
  4. a checkpoint: one file, written to a temporary name and renamed; a run stopped half-way and
     resumed from it ends with exactly the weights of a run that never stopped (on the CPU).

This lesson trains on EVERY token (prompt included) on purpose: lesson 4 shows why distillation
must not, and fixes it with the response mask.

Run:  python -m lessons.l03_training_loop      (--fast: a few steps of a tiny model)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from minikd.common import DATA_DIR, seed_all
from minikd.data import SFTData, load_sft
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, get_lr, load_checkpoint, sft_objective, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny model, few steps (the tests use it)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 300, --fast 20)")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = args.steps or (20 if args.fast else 300)
    preset = "tiny" if args.fast else "student"

    # Step 1: a toy corpus — the shipped training prompts and answers, every token a target.
    tok = Tokenizer.default()
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

    # Step 2: the schedule.
    cfg = TrainConfig(steps=steps, lr=3e-3, warmup=max(1, steps // 10), device=args.device, seed=args.seed,
                      log_every=max(1, steps // 10))
    marks = [0, cfg.warmup - 1, steps // 2, steps - 1]
    print("Step 2: learning rate at steps " + ", ".join(f"{s}: {get_lr(s, cfg):.2e}" for s in marks) + "\n")

    # Step 3: train, and watch the loss fall.
    seed_all(args.seed)
    model = GPT(get_config(preset, vocab_size=tok.vocab_size))
    print(f"Step 3: training the {preset} preset ({model.num_params():,} parameters) for {steps} steps")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "lesson3.pt"
        cfg.ckpt_path, cfg.ckpt_every = str(ckpt), max(1, steps // 2)
        history = train(model, data.get_batch, sft_objective, cfg, fingerprint=tok.fingerprint)
        first, last = history[0]["loss"], history[-1]["loss"]
        print(f"  loss {first:.3f} -> {last:.3f}\n")

        # Step 4: stop half-way, resume, compare with the run that never stopped.
        half = steps // 2

        def stops_half_way(step):
            if step == half:
                raise KeyboardInterrupt  # as if the process was killed while fetching this batch
            return data.get_batch(step)

        seed_all(args.seed)
        interrupted = GPT(get_config(preset, vocab_size=tok.vocab_size))
        cfg2 = TrainConfig(**{**cfg.__dict__, "log_every": 0, "ckpt_path": str(Path(tmp) / "resume.pt")})
        try:
            train(interrupted, stops_half_way, sft_objective, cfg2, fingerprint=tok.fingerprint)
        except KeyboardInterrupt:
            pass
        saved = load_checkpoint(cfg2.ckpt_path)
        print(f"Step 4: run interrupted; checkpoint holds step {saved['step']} "
              f"({Path(cfg2.ckpt_path).stat().st_size / 1e6:.2f} MB, keys {sorted(saved)})")
        resumed = GPT(get_config(preset, vocab_size=tok.vocab_size))  # fresh weights, then resume
        cfg2.resume = True
        train(resumed, data.get_batch, sft_objective, cfg2, fingerprint=tok.fingerprint)
        equal = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     resumed.state_dict().values()))
        print(f"  resumed run ends with weights equal to the uninterrupted run: {equal}\n")

    print("Check yourself")
    print("  1. Why does the loop divide the summed loss by the answer tokens of the whole step,")
    print("     not average each micro-batch?")
    print("  2. What must get_batch(step) depend on for a resumed run to match an uninterrupted one?")
    print("  3. This lesson put a target on every token. Which of them will distillation not want?")
    return {"first_loss": first, "last_loss": last, "resume_equal": equal}


if __name__ == "__main__":
    main()
