"""Lesson 5 — train the teacher (and show there is something to distil).

Distillation needs a teacher that knows more than the student can learn on its own. Here both are
trained the same way — masked SFT on the labelled training set (with its wrong labels and its mixed
surface forms) — and scored on the test set by the verifiers, which recompute every answer from the
prompt:

    teacher = the `teacher` preset (several times the student's parameters), trained once and cached
              under runs/<profile>/teacher.pt — every later lesson loads it instead of retraining;
    student = the `student` preset, the same data, the student's training budget.

What to look at:
  1. the teacher's loss curve;
  2. accuracy per task family, teacher vs student, on the test set and on the held-out split
     (cases of the same size kept out of training: a carry in every column, a digit three times);
  3. whether the teacher beats its own data, and the student — verdicts computed from the numbers
     (minikd.verdict.claim), per prompt with a 95 % interval;
  4. the gap between the two models is what lessons 6-10 try to close by distillation.

Run:  python -m lessons.l05_train_teacher        (--fast: tiny models, seconds; --retrain: ignore the cache)
"""

from __future__ import annotations

import argparse

from minikd.evaluate import accuracy
from minikd.profiles import get_profile, get_teacher, load_split, profile_dir, train_model
from minikd.report import ascii_curve, save_line_plot
from minikd.tasks import verify
from minikd.tokenizer import Tokenizer
from minikd.verdict import claim


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny models, few steps (the tests use it)")
    parser.add_argument("--retrain", action="store_true", help="train the teacher even if one is cached")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    profile = get_profile("quick" if args.fast else "default")
    tok = Tokenizer.default()
    train_set = load_split("train", profile, tok)
    test_set, heldout = load_split("test", profile, tok), load_split("heldout", profile, tok)

    # Step 1: the data the teacher learns from — and how often it is wrong.
    wrong = sum(not verify(r["prompt"], r["completion"]) for r in train_set)
    print(f"Step 1: {len(train_set)} labelled training examples; the verifier rejects {wrong} of them "
          f"({100 * wrong / len(train_set):.1f}% label noise)\n")

    # Step 2: the teacher (trained once, then cached).
    teacher, info = get_teacher(profile, device=args.device, retrain=args.retrain, seed=args.seed)
    losses = [row["loss"] for row in info["history"]]
    print(f"\nStep 2: teacher = {profile.teacher_preset} preset, {teacher.num_params():,} parameters, "
          f"{profile.teacher_steps} steps ({info.get('train_seconds', 0):.0f} s when it was trained)")
    print(ascii_curve(losses, label="teacher training loss"))
    png = save_line_plot(profile_dir(profile) / "teacher_loss.png",
                         {"teacher": ([r["step"] for r in info["history"]], losses)},
                         "step", "loss per answer token", "teacher training loss")
    if png:
        print(f"  (also drawn to {png})")

    # Step 3: a student trained exactly the same way, on its own budget.
    print(f"\nStep 3: student = {profile.student_preset} preset, the same data, {profile.student_steps} steps")
    student, _ = train_model(profile.student_config(tok.vocab_size), train_set, profile.student_steps,
                             profile, lr=profile.student_lr, seed=args.seed, device=args.device, tok=tok)

    # Step 4: verified accuracy, teacher vs student.
    print("\nStep 4: verified accuracy (greedy decoding)")
    rows = {}
    for name, model in [("teacher", teacher), ("student", student)]:
        rows[name] = {"params": model.num_params(), "test": accuracy(model, tok, test_set),
                      "heldout": accuracy(model, tok, heldout)}
    families = list(rows["teacher"]["test"]["acc_by_task"])
    print(f"  {'model':8s} {'params':>9s} " + " ".join(f"{f:>10s}" for f in families)
          + f" {'test':>7s} {'held-out':>9s}")
    for name, r in rows.items():
        print(f"  {name:8s} {r['params']:9,d} "
              + " ".join(f"{100 * r['test']['acc_by_task'][f]:9.1f}%" for f in families)
              + f" {100 * r['test']['acc']:6.1f}% {100 * r['heldout']['acc']:8.1f}%")

    # Step 5: what the numbers allow one to say (per test prompt: 1 = right, 0 = wrong).
    print("\nStep 5: verdicts (paired by prompt, 95 % intervals)")
    right = {name: [float(ok) for ok in r["test"]["correct"]] for name, r in rows.items()}
    label_acc = 1 - wrong / len(train_set)
    claim("the teacher is right more often than its training labels", right["teacher"], label_acc, ">",
          f"teacher test accuracy − label accuracy ({100 * label_acc:.1f} %)", scale=100, unit="points")
    claim("the teacher is right more often than a student trained the same way", right["teacher"],
          right["student"], ">", "teacher − student, test accuracy", scale=100, unit="points")
    print()

    print("Check yourself")
    print("  1. How can the teacher be right more often than the labels it was trained on?")
    print("  2. Why must the teacher clearly beat the student before distillation is worth trying?")
    print("  3. The held-out cases have the same size as the training cases. What does a model need to have")
    print("     learned to get them right, when it never saw one of them?")
    return {name: {"test": r["test"]["acc"], "heldout": r["heldout"]["acc"]} for name, r in rows.items()}


if __name__ == "__main__":
    main()
