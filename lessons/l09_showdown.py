"""Lesson 9 — the showdown: Kim & Rush in miniature.

Which method should I use, and what does each cost? One experiment, honest numbers: the same student
preset, the same budget (steps x sequences), the same test and held-out sets, for

    gt            the baseline: SFT on the ground-truth answers
    word_kd       token-level KD online (needs the teacher's logits at every answer position)
    seq_kd        sequence-level KD: SFT on the teacher's greedy answers  u = teacher(s)
    seq_kd_beam   the same on the teacher's beam-search (K = 5) answers
    seq_kd+word   token-level KD on the teacher's answers (the combination)
    seq_inter     SFT on the teacher's beam candidate closest to the ground truth

Kim & Rush (2016) found, for translation: the seq-KD student's greedy output is nearly as good as its
beam output (the student learns one mode, so beam search has little left to find); seq-KD beats
word-KD; the teacher's data is far more likely under the student than the ground truth; and the
combination of seq-KD and word-KD is best. This lesson checks each claim against the table the run
produced and says plainly where the miniature agrees and where it does not.

The card, on what is gained and lost:
    "Gained — simplicity and scale: teacher text is all you need; a closed API teacher works; ...
     the teacher does not run alongside student training.
     Lost: the probability structure over the teacher's alternative tokens disappears; ..."

Run:  python -m lessons.l09_showdown       (runs `minikd run --no-readme`, reusing every cached stage;
      --fast: the quick profile; --seeds 3: the full table with spread)
"""

from __future__ import annotations

import argparse

from minikd import showdown
from minikd.report import mean_std


def claim(text: str, holds: bool, evidence: str) -> bool:
    print(f"  [{'agrees' if holds else 'does NOT agree'}] {text}\n      {evidence}")
    return holds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="the quick profile (the tests use it)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    # Step 1: run (or reload from runs/) the whole experiment.
    run_args = ["--no-readme", "--seeds", str(args.seeds), "--device", args.device]
    out = showdown.main(run_args + (["--quick"] if args.fast else []))
    results, seeds = out["results"], list(range(args.seeds))

    def avg(method, key):
        return mean_std([results[(method, s)]["metrics"][key] for s in seeds])[0]

    # Step 2: Kim & Rush's findings, checked against this run's numbers.
    print("\nStep 2: Kim & Rush's findings against this run")
    gap = {m: abs(avg(m, "beam_acc") - avg(m, "greedy_acc")) for m in showdown.METHODS}
    verdicts = {}
    verdicts["greedy_close_to_beam"] = claim(
        "a seq-KD student gains less from beam search than the baseline does",
        gap["seq_kd"] <= gap["gt"],
        f"|beam - greedy|: seq_kd {100 * gap['seq_kd']:.1f} points, gt {100 * gap['gt']:.1f} points")
    verdicts["seq_beats_word"] = claim(
        "seq-KD beats word-KD (greedy accuracy)",
        avg("seq_kd", "greedy_acc") > avg("word_kd", "greedy_acc"),
        f"seq_kd {100 * avg('seq_kd', 'greedy_acc'):.1f}% vs word_kd {100 * avg('word_kd', 'greedy_acc'):.1f}%")
    verdicts["teacher_data_likely"] = claim(
        "the teacher's data is easier (lower NLL) for the seq-KD student than the ground truth",
        avg("seq_kd", "nll_teacher_data") < avg("seq_kd", "nll_gt"),
        f"seq_kd student NLL: teacher data {avg('seq_kd', 'nll_teacher_data'):.3f}, "
        f"ground truth {avg('seq_kd', 'nll_gt'):.3f} nats per answer token")
    best = max(showdown.METHODS, key=lambda m: avg(m, "greedy_acc"))
    verdicts["combination_best"] = claim(
        "seq-KD + word-KD is the best student",
        best == "seq_kd+word",
        f"best greedy accuracy: {best} {100 * avg(best, 'greedy_acc'):.1f}%")
    if len(seeds) == 1:
        print("  (one seed: differences of a few points may be noise; --seeds 3 gives the spread)")

    # Step 3: what sequence-level KD gained and lost, in this run's numbers.
    m = results[("seq_kd", 0)]["metrics"]
    w = results[("word_kd", 0)]["metrics"]
    print("\nStep 3: what sequence-level KD gained and lost here")
    print(f"  gained: the student read {m['stored_bytes'] / 1e3:.0f} kB of teacher text and no logits; the teacher")
    print("          was not loaded while it trained (word-KD needed it at every step: "
          f"{w['train_seconds']:.0f} s vs {m['train_seconds']:.0f} s of training)")
    print(f"  gained: greedy vs beam gap {100 * gap['seq_kd']:.1f} points (baseline {100 * gap['gt']:.1f})")
    print(f"  lost:   the teacher's alternatives — the seq-KD student's NLL on the ground-truth answers is "
          f"{avg('seq_kd', 'nll_gt'):.3f}, the baseline's {avg('gt', 'nll_gt'):.3f}: it learned the teacher's")
    print("          one phrasing, not the spread of valid forms in the data")
    print(f"  held-out (one more digit): seq_kd {100 * avg('seq_kd', 'heldout_acc'):.1f}%, "
          f"gt {100 * avg('gt', 'heldout_acc'):.1f}% — distillation does not teach what the teacher cannot do\n")

    print("Check yourself")
    print("  1. Why does beam search help a seq-KD student less than a student trained on ground truth?")
    print("  2. What does the word_kd student need at training time that the seq_kd student does not?")
    print("  3. Why does the seq-KD student find the ground-truth answers less likely than the baseline does?")
    return verdicts


if __name__ == "__main__":
    main()
