"""The main job: the whole offline pipeline and Kim & Rush's comparison in miniature, over seeds.

`minikd` (= `minikd run`) runs, with a progress line per stage and everything cached under runs/<profile>/:

  1. tokenizer   the shipped BPE (data/tokenizer.tiktoken)
  2. teacher     masked SFT on the labelled training set (cached checkpoint)
  3. generate    u = teacher(s): greedy answers to the training prompts, to the unlabelled prompts and to
                 the test prompts (the last only to measure NLL on teacher data); beam search
                 (K = 5, length-normalised) on the training prompts, whose candidates also give seq-inter
  4. filter      drop truncated and too-long generations (counted, never silently); wrong answers stay:
                 this is plain seq-KD, which distils the teacher's errors too (curation is lesson 9)
  5. logits      the teacher's full next-token distribution at every answer position of the pools
                 token-level KD trains on, computed once and stored (k = V): word-level KD then trains
                 from a file like every other method, with exactly the online loss (lesson 7)
  6. students    first word-KD's T and α, chosen on a validation slice of the training set; then the
                 same `student` preset, the same budget (steps x sequences), one per method and seed,
                 test accuracy recorded along the way (the learning curve):
                   gt                 SFT on the ground-truth answers (the baseline)
                   word_kd            token-level KD: the teacher's distribution at every answer position
                   seq_kd             SFT on the teacher's greedy answers
                   seq_kd_beam        SFT on the teacher's beam-search answers
                   seq_kd+word        token-level KD on the teacher's greedy answers (the combination)
                   seq_inter          SFT on the beam candidate whose answer is closest to the ground truth
                   seq_kd_unlabelled  SFT on the teacher's answers to the unlabelled prompts (no label seen)
                 The default runs gt, word_kd, seq_kd and seq_kd+word (10 minutes on 2 cores); --full, or
                 --seeds N (the README's run), adds the other three and trains every method to 4x the
                 budget as well (--plateau)
  7. measure     the teacher (greedy, beam, sampled at T = 1), every student (greedy, beam, held-out, NLL
                 on ground truth and on the teacher's answers to the test prompts), per task family
  8. report      results.json (per seed, per family, per step), results.md, curves; verdicts on Kim &
                 Rush's claims computed from the seeds (minikd.machinery.rendering). `minikd readme` copies them into
                 the README; the main job itself writes under runs/ only.

Stages 3, 5 and 6 are embarrassingly parallel. They run on the ranks of torch.distributed
(minikd.machinery.launch), minikd's one parallel mechanism, started by torchrun (`torchrun --nproc_per_node N
-m minikd`, on one machine, or on several that share runs/ through a common filesystem) or, without it, by
the job itself: `--jobs` ranks on this machine (default 2 on a CPU with 2+ cores, each with its share of
the cores: for models this small, two 1-thread processes do about 1.3-1.6x the work of one 2-thread
process; 1 for --quick, and on a GPU). Who does what:

  teacher    rank 0 trains it (or loads it); the other ranks wait, then load its checkpoint
  generate   rank r of W labels prompts r, r + W, ... with its own copy of the teacher; rank 0 merges
             the shards (labelling.merge_shards) and filters
  logits     the pools' stored distributions, one pool per rank in turn
  students   assigned to ranks before they start, the same on every rank (longest first, each to the
             least-loaded rank); each is trained alone on its rank and seeded from its own settings, so its
             numbers do not depend on the rank that ran it; results come back through the files the job
             caches anyway (runs/<profile>/students/)
  measure    rank 0 measures the teacher and writes results.json, which records world_size and what each
             rank did ("ranks")
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from minikd import ranks
from minikd.data import load_sft, read_jsonl, read_meta, write_jsonl
from minikd.device import device_policy
from minikd.evaluate import accuracy, answer_limit, answer_nll, decode_records, score
from minikd.machinery import launch
from minikd.machinery.labelling import filter_dataset, merge_shards, seq_inter_dataset, shard_path, teacher_fingerprint
from minikd.machinery.stages import (CHUNK, PROFILES, data_paths, get_profile, get_teacher, load_split, note,
                                     profile_dir, prompt_records, stage, teacher_greedy)
from minikd.machinery.students import (BEAM, BEAM_EVAL, CORE_METHODS, SHOWCASE, TOKEN_KD, WORD_KD_GRID, Context, build_stores,
                                       describe_answers, make_job, pick_word_kd, pool_fingerprints, run_student_jobs,
                                       showcase, sweep_jobs)
from minikd.runtime import atomic_write_text, get_device, seed_all
from minikd.seqkd import beam_best_record
from minikd.tokenizer import Tokenizer
from minikd.train import load_model

METHODS = ["gt", "word_kd", "seq_kd", "seq_kd_beam", "seq_kd+word", "seq_inter", "seq_kd_unlabelled"]
# The default run (about 10 minutes on 2 cores): Kim & Rush's core four. --full adds the methods that need
# more of the teacher: its beam search over every training prompt, and its answers to the unlabelled prompts.
DEFAULT_METHODS = list(CORE_METHODS)
PLATEAU_SEEDS = 3  # seeds of the long (plateau) runs


# ---------------------------------------------------------------------------------------------------
# Ranks (minikd.machinery.launch): how many, and who does what

def default_jobs(device, profile) -> int:
    """Ranks the plain `minikd` starts itself (no torchrun): 2 on a CPU with 2+ cores, else 1.

    Small models use a core badly: on this project's 2-core machine, two 1-thread processes trained the
    student preset 1.35x and decoded greedily 1.6x faster than one 2-thread process. A GPU runs one. The
    quick profile runs one: a rank first imports torch and its optimizer machinery (about 5 s here),
    longer than a tiny student takes to train."""
    if profile.name == "quick":
        return 1
    return 2 if torch.device(device).type == "cpu" and (os.cpu_count() or 1) >= 2 else 1


def teacher_on_ranks(profile, device: str, retrain: bool, did: list | None = None):
    """Stage 2: rank 0 trains the teacher (or loads it from the cache), alone, with its machine's threads
    (those of a one-process run); the other ranks wait, then load its checkpoint. Returns get_teacher's
    (model, info)."""
    if ranks.is_main():
        with launch.whole_machine(), ranks.alone():
            out = get_teacher(profile, device=device, retrain=retrain)
        note(did, "teacher")
    ranks.barrier()  # the teacher's checkpoint is written
    if not ranks.is_main():
        out = get_teacher(profile, device=device)
    return out


# ---------------------------------------------------------------------------------------------------
# Stage 3-4: the teacher's data


def label_shard(profile, rank: int, world_size: int, device="cpu", teacher=None, full: bool = True) -> None:
    """The teacher's answers to every world_size-th prompt of each prompt set this job needs: greedy on the
    training and the test prompts; with `full` also beam search on the training prompts and greedy on the
    unlabelled ones.

    One beam search serves two methods: its best answer (seq_kd_beam) and the candidate closest to the
    ground truth (seq_inter); both are stored in the seq-inter file. Each rank passes its own copy of the
    teacher (else it is read from its checkpoint)."""
    tok = Tokenizer.default()
    ckpt = profile_dir(profile) / "teacher.pt"
    if teacher is None:
        teacher, _ = load_model(ckpt, tok, device=str(device))
    teacher_greedy(profile, teacher, tok, "train", rank, world_size)
    if full:
        common = dict(teacher_ckpt=str(ckpt), chunk=CHUNK, stale="restart", rank=rank, world_size=world_size,
                      max_new_tokens=answer_limit(load_split("train", profile, tok)))
        seq_inter_dataset(teacher, tok, prompt_records(load_split("train", profile, tok)), data_paths(profile)["inter"],
                          **BEAM, **common)
        teacher_greedy(profile, teacher, tok, "unlabelled", rank, world_size)
    teacher_greedy(profile, teacher, tok, "test", rank, world_size)


def _complete_for(path: Path, teacher) -> bool:
    """Does `path` look like a finished file of this teacher's answers? (jobs checks every setting
    when the file is opened again; this only decides whether the ranks label shards.)"""
    meta = read_meta(path) if path.exists() else None
    return bool(meta and meta.get("complete") and meta.get("shard") is None
                and meta.get("settings", {}).get("teacher") == teacher_fingerprint(teacher))


def teacher_data(profile, teacher, tok, times: dict, device="cpu", full: bool = True,
                 did: list | None = None) -> dict[str, Path]:
    """Stages 3-4: the teacher's answers, stored as JSONL and filtered (cached). full=False skips the beam
    search and the unlabelled prompts (and the three methods that train on them). On W ranks each labels
    its shard of the prompts with its own copy of the teacher; rank 0 merges the shards and filters."""
    paths = data_paths(profile)
    t0 = stage(3, "generate: the teacher answers the training prompts (greedy" + (
        f", and beam K = {BEAM['beam_size']} with length penalty {BEAM['length_penalty']}" if full else "")
        + ")" + (", the unlabelled prompts" if full else "") + " and the test prompts (greedy)")
    generated = ("greedy", "inter", "unlabelled", "test") if full else ("greedy", "test")
    rank, world = ranks.rank(), ranks.world_size()
    cached = ranks.broadcast_object(all(_complete_for(paths[k], teacher) for k in generated))
    if world > 1 and not cached:
        print(f"  {world} ranks, one shard of the prompts each", flush=True)
        label_shard(profile, rank, world, device, teacher=teacher, full=full)
        note(did, f"generate: prompts {rank}, {rank} + {world}, ... (shard {rank} of {world})")
        ranks.barrier()  # every shard is complete
        if ranks.is_main():
            for k in generated:
                merge_shards([shard_path(paths[k], r, world) for r in range(world)], paths[k])
    elif ranks.is_main():
        label_shard(profile, 0, 1, device, teacher=teacher, full=full)
        note(did, "generate: cached" if cached else "generate: every prompt")
    if not full:
        paths = {k: v for k, v in paths.items() if k in generated}
    elif ranks.is_main():
        write_jsonl(paths["beam"], [beam_best_record(r) for r in read_jsonl(paths["inter"])])
    times["generate"] = time.perf_counter() - t0

    t0 = stage(4, "filter: drop truncated and too-long answers (wrong answers stay: plain seq-KD)")
    kept = {name: path.with_name(path.stem + ".filtered.jsonl") for name, path in paths.items()}
    for name, path in paths.items() if ranks.is_main() else ():  # one writer
        report = filter_dataset(path, kept[name], tok, profile.block_size, verify=False)
        print(f"  {name}: {report['output']} of {report['input']} kept")
    ranks.barrier()  # the merged and filtered files are written
    times["filter"] = time.perf_counter() - t0
    return kept


# ---------------------------------------------------------------------------------------------------
# What a data set teaches: answer accuracy and the spread of surface forms, per family


def describe_data(train_set: list[dict], kept: dict[str, Path]) -> dict:
    """The data table: what each training pool teaches (the raw teacher files, before the length filter)."""
    paths = data_paths_from(kept)
    out = {"ground truth labels (train)": describe_answers(train_set)}
    for name, label in (("greedy", "teacher greedy (train prompts)"), ("beam", "teacher beam (train prompts)"),
                        ("inter", "seq-inter choice (train prompts)"),
                        ("unlabelled", "teacher greedy (unlabelled prompts)")):
        if name in paths:
            out[label] = describe_answers(list(read_jsonl(paths[name])))
    return out


def data_paths_from(kept: dict[str, Path]) -> dict[str, Path]:
    """The raw (unfiltered) file of each filtered one."""
    return {k: p.with_name(p.name.replace(".filtered.jsonl", ".jsonl")) for k, p in kept.items()}


def label_vs_teacher(train_set: list[dict], kept: dict[str, Path]) -> dict:
    """Per training prompt: is the label right, is the teacher's greedy answer right? (paired by prompt)"""
    teacher = {r["id"]: r for r in read_jsonl(data_paths_from(kept)["greedy"])}
    label, ours = [], []
    for r in train_set:
        t = teacher[r["id"]]
        label.append(float(score(r["prompt"], r["completion"])))
        ours.append(float(score(r["prompt"], t["completion"], t["ended"])))
    return {"label_correct": label, "teacher_correct": ours}


# ---------------------------------------------------------------------------------------------------
# Stages 5-6: students


def run_students(ctx: Context, seeds: list[int], device, times: dict, plateau: int = 0,
                 methods=METHODS, did: list | None = None) -> tuple[dict, dict, dict, list[dict]]:
    """Stage 6: every method with every seed at the budget, and (plateau > 0) at plateau x the budget,
    plus word-KD's validation sweep. Two rounds over the ranks (run_student_jobs): the sweep and every student that
    needs no T and alpha; then, with the chosen setting, the token-level KD students.
    Returns (budget runs, plateau runs, the chosen word-KD setting, the sweep)."""
    profile = ctx["profile"]
    ctx.folder.mkdir(parents=True, exist_ok=True)
    steps, long_steps = profile.student_steps, plateau * profile.student_steps
    long_seeds = seeds[:PLATEAU_SEEDS] if plateau else []
    t0 = stage(6, f"students: {len(methods)} methods x {len(seeds)} seed(s) at {steps} steps of "
               f"{profile.batch_size} sequences" + (f", and x {len(long_seeds)} seed(s) at {long_steps} steps "
                                                    f"(plateau check)" if plateau else "")
               + f"; word-KD's T and α chosen first on {profile.n_val} held-back training prompts "
               f"({len(WORD_KD_GRID)} settings, seed 0)")

    def jobs_for(ms, word_kd):
        budget = {(m, s): make_job(ctx, m, s, steps, word_kd) for m in ms for s in seeds}
        long = {(m, s): make_job(ctx, m, s, long_steps, word_kd) for m in ms for s in long_seeds}
        return budget, long

    grid = sweep_jobs(ctx)
    budget, long = jobs_for([m for m in methods if m not in TOKEN_KD], None)
    done = run_student_jobs(profile, grid + list(long.values()) + list(budget.values()), str(device), did)
    word_kd, sweep = pick_word_kd(grid, done)
    kd_budget, kd_long = jobs_for([m for m in methods if m in TOKEN_KD], word_kd)
    done.update(run_student_jobs(profile, list(kd_long.values()) + list(kd_budget.values()), str(device), did))
    budget, long = {**budget, **kd_budget}, {**long, **kd_long}
    order = {m: i for i, m in enumerate(methods)}  # results in the order of the methods, seed by seed
    budget_runs = {k: done[budget[k]["name"]] for k in sorted(budget, key=lambda k: (order[k[0]], k[1]))}
    long_runs = {k: done[long[k]["name"]] for k in sorted(long, key=lambda k: (order[k[0]], k[1]))}
    times["students"] = time.perf_counter() - t0
    return budget_runs, long_runs, word_kd, sweep


# ---------------------------------------------------------------------------------------------------
# Stage 7: the teacher's own numbers

def measure_teacher(teacher, tok, profile, kept, seed: int = 0) -> dict:
    """The teacher on the same tests as the students, plus its T = 1 samples (what token-level KD copies)."""
    test_set, heldout = load_split("test", profile, tok), load_split("heldout", profile, tok)
    limit = answer_limit(load_split("train", profile, tok))
    greedy = accuracy(teacher, tok, test_set, max_new_tokens=limit)
    beam = accuracy(teacher, tok, test_set, method="beam", max_new_tokens=limit, **BEAM)
    seed_all(seed)
    sampled = decode_records(teacher, tok, test_set, method="sample", seed=seed, max_new_tokens=limit)
    sampled_texts = [g.text if g.ended else "" for g in sampled]  # a cut-off sample is wrong: no text
    held = accuracy(teacher, tok, heldout, max_new_tokens=limit)
    return {
        "greedy_acc": greedy["acc"], "acc_by_task": greedy["acc_by_task"],
        "beam_acc": beam["acc"], "beam_acc_by_task": beam["acc_by_task"],
        "sampled": describe_answers(test_set, sampled_texts),
        "greedy_correct": [float(ok) for ok in greedy["correct"]],
        "sampled_correct": [float(score(r["prompt"], g.text, g.ended)) for r, g in zip(test_set, sampled)],
        "heldout_acc": held["acc"], "heldout_by_task": held["acc_by_task"],
        "own_logprob": greedy["mean_logprob"],
        "nll_gt": answer_nll(teacher, test_set, tok.pad_id),
        "nll_teacher_data": answer_nll(teacher, load_sft(kept["test"], tok, profile.block_size)[0], tok.pad_id),
        "outputs": describe_answers(test_set, greedy["outputs"]),
        "showcase": showcase(greedy),
        "params": teacher.num_params(),
    }


# ---------------------------------------------------------------------------------------------------
# The job

def main(argv=None):
    """`minikd run`: parse the options, then run the job here, on torchrun's ranks, or on --jobs ranks it
    starts itself (minikd.machinery.launch.launch). Returns the results (None on ranks other than 0)."""
    parser = argparse.ArgumentParser(prog="minikd run", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="the same path on tiny settings (about a minute)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None, help="overrides --quick")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per method (default 3). Giving it turns on --full: the README's run is "
                        "`minikd --seeds 5`")
    parser.add_argument("--full", action="store_true",
                        help="also the teacher's beam search and its answers to the unlabelled prompts, the three "
                        "methods trained on them (seq_kd_beam, seq_inter, seq_kd_unlabelled), and the plateau check; "
                        "without it: " + ", ".join(DEFAULT_METHODS))
    parser.add_argument("--plateau", type=int, default=None,
                        help=f"also train every method to this many times the budget ({PLATEAU_SEEDS} seeds) to "
                        "see where it ends up (default: 4 with --full, else 0 = off)")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    parser.add_argument("--jobs", type=int, default=None,
                        help="ranks to start on this machine when not under torchrun (default: 2 on a CPU with 2+ "
                        "cores; 1 for --quick and on a GPU). Under torchrun the ranks are torchrun's")
    parser.add_argument("--retrain-teacher", action="store_true", help="ignore the cached teacher")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile or ("quick" if args.quick else "default"))
    n_seeds = 3 if args.seeds is None else args.seeds
    full = args.full or args.seeds is not None
    plateau = args.plateau if args.plateau is not None else (4 if full else 0)
    if n_seeds < 1:
        parser.error(f"--seeds must be >= 1, got {n_seeds}")
    if plateau < 0 or plateau == 1:
        parser.error(f"--plateau must be 0 (off) or a factor >= 2, got {plateau}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    plan = {"seeds": list(range(n_seeds)), "full": full, "plateau": plateau, "methods": METHODS if full else DEFAULT_METHODS,
            "retrain": args.retrain_teacher, "command": " ".join(["minikd", *(sys.argv[1:] if argv is None else argv)])}
    device = get_device(args.device)
    ranks = launch.init()  # under torchrun: join its group
    if ranks > 1 and args.jobs not in (None, ranks):
        parser.error(f"--jobs {args.jobs}: under torchrun the ranks are torchrun's ({ranks}); drop --jobs")
    jobs = args.jobs if args.jobs is not None else default_jobs(device, profile)
    if ranks == 1 and jobs > 1:  # no torchrun: start the ranks here, the same rank code runs on them
        launch.launch(run_job, jobs, profile, plan, str(device))
        return json.loads((profile_dir(profile) / "results.json").read_text(encoding="utf-8"))
    return run_job(profile, plan, str(device))


def run_job(profile, plan: dict, device: str) -> dict | None:
    """Stages 1-8 on this rank (the whole job in one process). Returns the results on rank 0, None on others."""
    from minikd.machinery import report_page

    start, times, did = time.perf_counter(), {}, []
    t0 = stage(1, "tokenizer")
    tok = Tokenizer.default()
    print(f"  shipped BPE: {tok.vocab_size} tokens, fingerprint {tok.fingerprint}")
    train_set = load_split("train", profile, tok)
    times["tokenizer"] = time.perf_counter() - t0

    t0 = stage(2, f"teacher ({profile.teacher_preset} preset, {profile.teacher_steps} steps)")
    teacher, info = teacher_on_ranks(profile, device, plan["retrain"], did)
    times["teacher"] = time.perf_counter() - t0
    teacher_id = teacher_fingerprint(teacher)

    kept = teacher_data(profile, teacher, tok, times, device=device, full=plan["full"], did=did)
    ctx = Context(profile=profile, kept=kept, pools=pool_fingerprints(kept, train_set), teacher_id=teacher_id,
                  device=device_policy(device).key, stores=build_stores(profile, teacher, tok, kept, teacher_id, times, did=did))
    students, long, word_kd, sweep = run_students(ctx, plan["seeds"], device, times, plan["plateau"],
                                                  plan["methods"], did)
    world, ranks_did = ranks.world_size(), ranks.gather_objects(did)  # the last collective
    if not ranks.is_main():
        return None

    t0 = stage(7, "measure the teacher and describe the data")
    with launch.whole_machine():  # the other ranks are done
        teacher_metrics = measure_teacher(teacher, tok, profile, kept)
    teacher_metrics["train_seconds"] = info.get("train_seconds", 0.0)
    data = describe_data(train_set, kept)
    data["teacher sampled T = 1 (test prompts)"] = teacher_metrics["sampled"]
    times["measure"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - start

    seeds, plateau = plan["seeds"], plan["plateau"]
    results = {
        "profile": profile.name, "methods": plan["methods"], "all_methods": METHODS, "seeds": seeds,
        "steps": profile.student_steps, "batch_size": profile.batch_size, "beam_eval": list(BEAM_EVAL),
        "student_preset": profile.student_preset, "teacher_preset": profile.teacher_preset,
        "teacher_steps": profile.teacher_steps, "plateau": {"factor": plateau, "seeds": seeds[:PLATEAU_SEEDS]}
        if plateau else None, "beam": BEAM, "word_kd": word_kd, "word_kd_sweep": sweep, "n_val": profile.n_val,
        "n_test": len(load_split("test", profile, tok)), "n_heldout": len(load_split("heldout", profile, tok)),
        "jobs": world, "world_size": world, "ranks": {str(r): d for r, d in enumerate(ranks_did)},
        "threads": torch.get_num_threads(), "device": device, "times": times,
        "teacher": teacher_metrics, "data": data, "labels_vs_teacher": label_vs_teacher(train_set, kept),
        "students": {f"{m}-seed{s}": r for (m, s), r in students.items()},
        "long": {f"{m}-seed{s}": r for (m, s), r in long.items()},
        "showcase": [{k: r[k] for k in ("task", "prompt", "completion")} for r in load_split("test", profile, tok)[:SHOWCASE]],
        "command": plan.get("command", "minikd"), "commit": report_page.git_commit(),
    }
    write_results(results, profile_dir(profile))
    print(f"\ntotal wall time {times['total']:.0f} s")
    return results


def write_results(results: dict, out: Path) -> None:
    """Stage 8: results.json, then everything rendered from it: results.md, the curves' PNG, the report page."""
    from minikd.machinery import rendering, report_page  # tables, curves, verdicts, the page: from results.json
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    report = rendering.render(results)
    atomic_write_text(out / "results.md", report + "\n")
    print("\n" + report)
    png = rendering.save_curve_plot(results, out / "curves.png")
    page = report_page.write_page(results, out / "report.html", out / "lessons")
    print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}, {page}" + (f", {png}" if png else ""))
    if results["profile"] == "default":
        print("`minikd readme` copies these results and verdicts into README.md")


if __name__ == "__main__":
    main(sys.argv[1:])
