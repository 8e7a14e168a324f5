"""Lesson 9 — curation: filter and regenerate the teacher's answers, and what a poor teacher passes on.

The card's offline recipe:

    1. Generate the teacher's answers in advance.
    2. Filter out low-quality answers, or regenerate them.
    3. Train the student on the stored dataset.
    4. Never run the teacher again during student training.

and one of the things sequence-level KD loses: "if teacher outputs are poor, their errors and tone are
distilled too". DeepSeek-R1's distilled models were trained on a curated set made this way: sample the
teacher, keep what a checker accepts (rejection sampling), train the small model on what is left.

What to look at:
  1. a deliberately weakened teacher: the teacher preset trained for half of its steps on the noisy
     training set (20% wrong labels) — cached like the real one;
  2. its answers to the prompt set, stored (greedy);
  3. the filter: every dropped answer counted by reason (cut off, too long, rejected by the verifier,
     duplicate) and by task family;
  4. regeneration: each dropped prompt is sampled again, up to N tries, and the first answer the checks
     accept is kept — and where that cannot help (a family the teacher never gets right);
  5. students with the same budget on unfiltered / filtered / regenerated data (and, as a control, on the
     ground truth): accuracy, error rate next to the teacher's, and how many of the teacher's own wrong
     answers each student repeats word for word.

Run:  python -m lessons.l09_curation      (--fast: tiny models, seconds; the default run caches the weak
      teacher and its data under runs/default/)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from minikd.common import seed_all
from minikd.data import read_jsonl, read_meta
from minikd.jobs import filter_dataset, generate_dataset, load_teacher_data, report_path
from minikd.evaluate import decode_records
from minikd.generate import generate_text
from minikd.model import GPT
from minikd.profiles import get_profile, load_split, profile_dir, train_model
from minikd.tasks import extract_answer, verify
from minikd.tokenizer import Tokenizer
from minikd.train import CheckpointError, load_model

FILTERS = {  # name -> filter_dataset settings (what each student's data went through)
    "unfiltered": dict(verify=False),  # only the cut-off answers go: they are never kept silently
    "filtered": dict(verify=True),
    "regenerated": dict(verify=True, regenerate=True),
}


def weak_teacher(profile, tok, device: str, seed: int):
    """The teacher preset after half of the real teacher's steps; cached at runs/<profile>/teacher_weak.pt."""
    path = profile_dir(profile) / "teacher_weak.pt"
    steps = max(1, profile.teacher_steps // 2)
    settings = json.loads(json.dumps({"profile": asdict(profile), "steps": steps, "seed": seed}))
    if path.exists():
        try:
            model, ckpt = load_model(path, tok, device=device)
            if ckpt["meta"].get("settings") == settings:
                print(f"weak teacher: loaded cached {path}")
                return model, path, steps
        except CheckpointError as e:
            print(f"weak teacher: cannot reuse {path} ({e}); retraining")
    train_set = load_split("train", profile, tok)
    print(f"weak teacher: the {profile.teacher_preset} preset, {steps} of {profile.teacher_steps} steps "
          f"(cached at {path})")
    model, _ = train_model(profile.teacher_config(tok.vocab_size), train_set, steps, profile,
                           lr=profile.teacher_lr, seed=seed,
                           ckpt_path=path, device=device, meta={"settings": settings}, tok=tok)
    return model, path, steps


def curated(raw_path, out_path, tok, profile, teacher, settings: dict, tries: int, max_new_tokens, seed: int):
    """filter_dataset, unless out_path already holds this very filtering of this very raw file (a cache)."""
    kw = dict(verify=settings["verify"], regenerate=teacher if settings.get("regenerate") else None, tries=tries,
              seed=seed, max_new_tokens=max_new_tokens)
    want = {"raw": read_meta(raw_path)["settings"], "verify": kw["verify"], "regenerate": bool(kw["regenerate"]),
            "tries": tries if kw["regenerate"] else 0, "seed": seed, "block_size": profile.block_size}
    meta = read_meta(out_path) if out_path.exists() else None
    if meta and report_path(out_path).exists():
        have = {"raw": meta.get("settings"), **{k: meta["filter"].get(k) for k in want if k != "raw"}}
        if have == want:
            counts = json.loads(report_path(out_path).read_text())["counts"]
            print(f"  {out_path.name}: cached ({counts['output']} of {counts['input']} records)")
            return counts
    return dict(filter_dataset(raw_path, out_path, tok, profile.block_size, **kw))


def student_on(name, examples, profile, tok, seed, device):
    """A student trained on `examples` with the profile's budget; an untrained one when nothing is left."""
    if not examples:
        print(f"  {name}: no examples survived, so this student stays untrained")
        seed_all(seed)
        return GPT(profile.student_config(tok.vocab_size)).eval()
    print(f"  {name}: {len(examples)} examples, {profile.student_steps} steps x {profile.batch_size}")
    model, _ = train_model(profile.student_config(tok.vocab_size), examples, profile.student_steps, profile,
                           lr=profile.student_lr, seed=seed, device=device, tok=tok, log_every=0)
    return model


def answers(model, tok, records, max_new_tokens=None) -> list:
    """The model's greedy answers (evaluate.decode_records; --fast caps their length to stay quick)."""
    if max_new_tokens is None:
        return decode_records(model, tok, records)
    return generate_text(model, tok, [r["prompt"] for r in records], max_new_tokens=max_new_tokens)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny models, a slice of the data (the tests use it)")
    parser.add_argument("--prompts", type=int, default=None,
                        help="how many unlabelled prompts the weak teacher labels (default 2000, --fast 48)")
    parser.add_argument("--tries", type=int, default=None, help="regeneration samples per dropped prompt (default 3)")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    profile = get_profile("quick" if args.fast else "default")
    tok = Tokenizer.default()
    out_dir = profile_dir(profile)
    n_prompts = args.prompts or (48 if args.fast else 2000)
    tries = args.tries or (2 if args.fast else 3)
    max_new_tokens = 16 if args.fast else None  # the --fast teacher rarely stops: keep its answers short

    # Step 1: the weak teacher.
    teacher, teacher_path, steps = weak_teacher(profile, tok, args.device, args.seed)
    test_set = load_split("test", profile, tok)[:16 if args.fast else None]
    teacher_gens = answers(teacher, tok, test_set, max_new_tokens)
    teacher_right = [bool(g.ended and verify(r["prompt"], g.text)) for r, g in zip(test_set, teacher_gens)]
    print(f"\nStep 1: weak teacher ({teacher.num_params():,} parameters, {steps} steps): "
          f"{100 * sum(teacher_right) / len(test_set):.1f}% right on the {len(test_set)} test prompts")

    # Step 2: it labels the prompt set (greedy; cached and resumable).
    prompts = load_split("unlabelled", profile, tok)[:n_prompts]
    raw_path = out_dir / f"weak_teacher_unlabelled{len(prompts)}.jsonl"
    print(f"\nStep 2: the weak teacher answers {len(prompts)} unlabelled prompts -> {raw_path}")
    generate_dataset(teacher, tok, prompts, raw_path, teacher_ckpt=teacher_path, stale="restart",
                     max_new_tokens=max_new_tokens)
    raw = list(read_jsonl(raw_path))
    wrong = sum(not (r["ended"] and verify(r["prompt"], r["completion"])) for r in raw)
    print(f"  {wrong} of {len(raw)} stored answers ({100 * wrong / len(raw):.1f}%) are wrong or cut off")

    # Steps 3-4: three curations of the same raw file.
    print(f"\nSteps 3-4: filter (verifier, truncation, length, duplicates), then regenerate the dropped prompts "
          f"(up to {tries} samples each at temperature 1)")
    counts, data = {}, {}
    for name, settings in FILTERS.items():
        path = out_dir / f"weak_teacher_unlabelled{len(prompts)}.{name}.jsonl"
        counts[name] = curated(raw_path, path, tok, profile, teacher, settings, tries, max_new_tokens, args.seed)
        data[name] = load_teacher_data(path, tok, profile.block_size)
    regenerated = out_dir / f"weak_teacher_unlabelled{len(prompts)}.regenerated.jsonl"
    report = json.loads(report_path(regenerated).read_text())
    print("  per task family (regenerated run):")
    for task, c in report["by_task"].items():
        print(f"    {task:10s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    print("  A family the teacher never gets right cannot be rescued by sampling it again: rejection sampling\n"
          "  only finds answers the teacher already gives some probability to.")

    # Step 5: students with the same budget, and a control trained on the ground truth.
    print(f"\nStep 5: students ({profile.student_preset} preset), the same budget each")
    data["ground truth (control)"] = load_split("train", profile, tok)
    students = {name: student_on(name, examples, profile, tok, args.seed, args.device)
                for name, examples in data.items()}

    # Step 6: accuracy, error rate, and the teacher's errors repeated.
    teacher_wrong = [i for i, ok in enumerate(teacher_right) if not ok]
    print(f"\nStep 6: on {len(test_set)} test prompts (greedy). 'teacher's errors repeated' = of the "
          f"{len(teacher_wrong)} prompts the teacher gets wrong, how often the student writes the same wrong answer")
    print(f"  {'model':24s} {'train examples':>14s} {'accuracy':>9s} {'error rate':>11s} {'teacher errors repeated':>24s}")
    print(f"  {'weak teacher':24s} {'':>14s} {100 * sum(teacher_right) / len(test_set):8.1f}% "
          f"{100 * (1 - sum(teacher_right) / len(test_set)):10.1f}% {'':>24s}")
    results = {"teacher_acc": sum(teacher_right) / len(test_set), "counts": counts, "students": {}}
    for name, model in students.items():
        gens = answers(model, tok, test_set, max_new_tokens)
        right = [bool(g.ended and verify(r["prompt"], g.text)) for r, g in zip(test_set, gens)]
        repeated = 0
        for i in teacher_wrong:
            task = test_set[i]["task"]
            mine, theirs = extract_answer(task, gens[i].text), extract_answer(task, teacher_gens[i].text)
            repeated += (not right[i]) and mine is not None and mine == theirs
        acc = sum(right) / len(test_set)
        share = repeated / len(teacher_wrong) if teacher_wrong else 0.0
        results["students"][name] = {"acc": acc, "n_train": len(data[name]), "teacher_errors_repeated": share}
        print(f"  {name:24s} {len(data[name]):14d} {100 * acc:8.1f}% {100 * (1 - acc):10.1f}% {100 * share:23.1f}%")
    print("  A student on unfiltered data learns the teacher's mistakes along with its skills; the verifier\n"
          "  removes them, and regeneration puts back answers for prompts the filter emptied.\n")

    print("Check yourself")
    print("  1. Why must a cut-off answer (no end token) never be kept, even when its text looks right?")
    print("  2. Which prompts does regeneration fail on, and what does that say about rejection sampling?")
    print("  3. Why can a student on filtered data still repeat some of the teacher's errors?")
    return results


if __name__ == "__main__":
    main()
