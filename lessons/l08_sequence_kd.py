"""Lesson 8 — sequence-level KD: the teacher writes the answers, the student learns them by SFT.

The card's pipeline, run step by step:

    1. Prompt set s
    2. Teacher generation u = teacher(s) — the large model writes a complete answer
    3. Stored target (s, u) — the generated sequence becomes offline training data
    4. Student SFT -log p(u | s) — answer tokens only, next-token cross-entropy

    "The student never sees the teacher's full distribution; it treats the teacher's actual sequence as
     the answer and learns it by next-token prediction."

What to look at:
  1. the prompt set: the shipped unlabelled prompts — nothing to train on until the teacher answers;
  2. u = teacher(s) for a few prompts, with log p_teacher(u | s) and whether each answer ended;
  3. the stored (s, u) file: one JSON line per prompt, and a sidecar saying how it was made; cut-off
     answers are flagged and filtered out, never silently kept;
  4. the student trained on that file with the response mask — the teacher is not loaded for this;
  5. its accuracy next to a student trained on the ground-truth answers, with the same budget;
  6. Kim & Rush: the teacher gives its own outputs a much higher log-probability than the ground-truth
     answers — distilled data is easier for the student to fit.

Run:  python -m lessons.l08_sequence_kd      (--fast: tiny models, seconds; the default run reuses the
      teacher cached by lesson 5 and caches the generated data under runs/default/)
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from minikd.data import read_jsonl, read_meta
from minikd.jobs import filter_dataset, generate_dataset, load_teacher_data
from minikd.seqkd import sequence_logprobs
from minikd.evaluate import accuracy, decode_records
from minikd.profiles import get_profile, get_teacher, load_split, profile_dir, train_model
from minikd.tasks import surface_form, verify
from minikd.tokenizer import Tokenizer


def form_shares(records: list[dict]) -> dict[str, str]:
    """Per task family, the share of each surface form among the answers the verifier can read."""
    by_task: dict[str, Counter] = {}
    for r in records:
        by_task.setdefault(r["task"], Counter())[surface_form(r["task"], r["completion"]) or "unreadable"] += 1
    return {task: ", ".join(f"{form} {100 * n / sum(c.values()):.0f}%" for form, n in c.most_common())
            for task, c in sorted(by_task.items())}


def verified_accuracy(records: list[dict], gens: list) -> dict:
    """evaluate.accuracy's numbers for answers already written: right = ended and verified."""
    right = [bool(g.ended and verify(r["prompt"], g.text)) for r, g in zip(records, gens)]
    tasks = sorted({r["task"] for r in records})
    return {"acc": sum(right) / len(right),
            "acc_by_task": {t: sum(ok for r, ok in zip(records, right) if r["task"] == t)
                            / sum(r["task"] == t for r in records) for t in tasks}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny models, a slice of the data (the tests use it)")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    profile = get_profile("quick" if args.fast else "default")
    tok = Tokenizer.default()
    out_dir = profile_dir(profile)
    # --fast: the barely trained teacher rarely stops, so cap its answers to keep the run short.
    max_new_tokens = 16 if args.fast else None

    # Step 1: the prompt set s — prompts only. ("answer" is there to score outputs; no model reads it.)
    prompts = load_split("unlabelled", profile, tok)
    print(f"Step 1: the prompt set s: {len(prompts)} unlabelled prompts "
          f"({dict(Counter(p['task'] for p in prompts))}), e.g.")
    for p in prompts[:3]:
        print(f"  {p['prompt']!r}")

    # Step 2: u = teacher(s), for a few prompts.
    teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
    print(f"\nStep 2: u = teacher(s) — the {profile.teacher_preset} preset ({teacher.num_params():,} "
          "parameters), greedy decoding")
    for p, g in zip(prompts[:4], decode_records(teacher, tok, prompts[:4])):
        print(f"  s = {p['prompt']!r}\n  u = {g.text!r}\n      log p(u | s) = {g.logprob:.3f}, ended: {g.ended}, "
              f"verifier: {'right' if g.ended and verify(p['prompt'], g.text) else 'wrong'}")

    # Step 3: the whole prompt set, stored as (s, u) — cached, resumable — then cut-off answers dropped.
    raw_path = out_dir / "seqkd_unlabelled_greedy.jsonl"
    print(f"\nStep 3: the teacher labels all {len(prompts)} prompts -> {raw_path}")
    t0 = time.perf_counter()
    generate_dataset(teacher, tok, prompts, raw_path, teacher_ckpt=out_dir / "teacher.pt", stale="restart",
                     max_new_tokens=max_new_tokens)
    gen_seconds = time.perf_counter() - t0
    with open(raw_path, encoding="utf-8") as f:
        first_line = f.readline().rstrip("\n")
    meta = read_meta(raw_path)
    print(f"  {raw_path.stat().st_size:,} bytes of text, {meta['n_records']} lines "
          f"({meta['seconds']:.1f} s of teacher generation). The first line:")
    print(f"  {first_line}")
    print(f"  sidecar {raw_path.name}.meta.json: decoding {meta['settings']['method']}, max_new_tokens "
          f"{meta['settings']['max_new_tokens']}, teacher {meta['teacher_checkpoint']}, "
          f"weights {meta['settings']['teacher']}")
    kept_path = out_dir / "seqkd_unlabelled_greedy.ended.jsonl"
    print("  Keep every answer that ended (the verifier is lesson 9's business):")
    filter_dataset(raw_path, kept_path, tok, profile.block_size, verify=False)

    # Step 4: the student — SFT on the stored file, loss on the answer tokens only. No teacher here.
    examples = load_teacher_data(kept_path, tok, profile.block_size, allow_truncated=False)
    if not examples:  # only the --fast teacher (30 steps) is this bad
        print("  (no answer ended: the --fast teacher is barely trained. To run the same path anyway the student "
              "trains on the cut-off answers, allowed explicitly — never do this for real.)")
        examples = load_teacher_data(raw_path, tok, profile.block_size, allow_truncated=True)
    print(f"\nStep 4: the student learns -log p(u | s) on {len(examples)} stored answers; the mask under one:")
    print(tok.draw_mask(examples[0]["ids"], examples[0]["mask"]))
    students, final_loss = {}, {}
    train_set = load_split("train", profile, tok)
    for name, data in [("ground truth", train_set), ("teacher (seq-KD)", examples)]:
        print(f"  student on {name}: {len(data)} examples, {profile.student_steps} steps x {profile.batch_size}")
        students[name], history = train_model(profile.student_config(tok.vocab_size), data, profile.student_steps,
                                              profile, lr=profile.student_lr, seed=args.seed, device=args.device,
                                              tok=tok, log_every=0)
        final_loss[name] = history[-1]["loss"]

    # Step 5: verified accuracy on the test set, greedy decoding. (The teacher's answers are kept for step 6.)
    test_set = load_split("test", profile, tok)[:24 if args.fast else None]
    print(f"\nStep 5: verified accuracy on {len(test_set)} test prompts (greedy)")
    gens = decode_records(teacher, tok, test_set)
    rows = {"teacher": verified_accuracy(test_set, gens)}
    rows.update({f"student on {name}": accuracy(m, tok, test_set) for name, m in students.items()})
    families = list(rows["teacher"]["acc_by_task"])
    print(f"  {'model':28s} " + " ".join(f"{f:>10s}" for f in families) + f" {'all':>7s} {'final train loss':>17s}")
    for name, r in rows.items():
        loss = final_loss.get(name.replace("student on ", ""))
        print(f"  {name:28s} " + " ".join(f"{100 * r['acc_by_task'][f]:9.1f}%" for f in families)
              + f" {100 * r['acc']:6.1f}% {'' if loss is None else f'{loss:17.3f}'}")

    # Step 6: Kim & Rush — how likely is each target under the teacher?
    own = [g.logprob for g in gens if g.ended]
    own_tokens = [len(g.tokens) + 1 for g in gens if g.ended]  # + the end token
    gt_lp, gt_tokens = sequence_logprobs(teacher, test_set, tok.pad_id)
    print(f"\nStep 6: the teacher's log-probability of two targets for the same {len(test_set)} test prompts")
    print(f"  {'target':34s} {'mean log p per answer':>22s} {'per token':>10s}")
    if own:
        print(f"  {'its own greedy answers (ended)':34s} {sum(own) / len(own):22.3f} {sum(own) / sum(own_tokens):10.3f}")
    else:
        print(f"  {'its own greedy answers':34s} {'(none ended)':>22s}")
    print(f"  {'the ground-truth answers':34s} {sum(gt_lp) / len(gt_lp):22.3f} {sum(gt_lp) / sum(gt_tokens):10.3f}")
    print("  Surface forms — ground truth (training set) vs the teacher's stored answers:")
    gt_forms, teacher_forms = form_shares(train_set), form_shares(examples)
    for task in gt_forms:
        print(f"    {task:10s} ground truth: {gt_forms[task]}\n    {'':10s} teacher:      {teacher_forms.get(task, '-')}")
    print("  The ground truth spreads evenly over several phrasings; the teacher's answers lean to the ones it\n"
          "  finds most likely (greedy picks its mode for each prompt). Kim & Rush: the student copies that mode,\n"
          "  an easier target (compare the final training losses in step 5).\n")

    print("Check yourself (the card's questions 2 and 3)")
    print("  2. Why is LLM sequence distillation implemented like SFT?")
    print("  3. Why is offline sequence distillation possible without teacher logits?")
    return {"n_prompts": len(prompts), "n_stored": len(examples), "generate_seconds": gen_seconds,
            "acc": {name: r["acc"] for name, r in rows.items()}, "final_loss": final_loss,
            "own_logprob": sum(own) / len(own) if own else None, "gt_logprob": sum(gt_lp) / len(gt_lp),
            "own_logprob_per_token": sum(own) / sum(own_tokens) if own else None,
            "gt_logprob_per_token": sum(gt_lp) / sum(gt_tokens)}


if __name__ == "__main__":
    main()
