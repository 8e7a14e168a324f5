"""The main job: the whole offline pipeline and Kim & Rush's comparison in miniature.

`minikd` (= `minikd run`) runs, with a progress line per stage and everything cached under runs/<profile>/:

  1. tokenizer   the shipped BPE (data/tokenizer.tiktoken)
  2. teacher     masked SFT on the labelled training set (cached checkpoint)
  3. generate    u = teacher(s) for every training prompt: greedy, and beam search (K = 5) whose
                 candidates also give seq-inter
  4. filter      drop truncated and too-long generations (counted, never silently)
  5. students    the same `student` preset, the same budget (steps x sequences), one per method:
                   gt            SFT on the ground-truth answers (the baseline)
                   word_kd       token-level KD online: the teacher's distribution at every answer position
                   seq_kd        SFT on the teacher's greedy answers
                   seq_kd_beam   SFT on the teacher's beam-search (K = 5) answers
                   seq_kd+word   token-level KD on the teacher's greedy answers (the combination)
                   seq_inter     SFT on the beam candidate closest to the ground truth
  6. measure     greedy and beam accuracy, held-out accuracy, log-prob of own outputs, NLL on ground
                 truth and on teacher data, bytes stored, time, parameters -> a markdown table
                 (runs/<profile>/results.md, and the README for the default profile) and a bar chart.

Every number in the table comes from this code, run with the seeds it records.

Stages 3 and 5 are embarrassingly parallel: the prompts split into shards (worker r answers prompts
r, r + W, ...; distill.merge_shards puts them back in order) and the students are independent runs. On a
CPU they go to `--jobs` worker processes (default 2), each with its share of the cores: for models this
small, two 1-thread processes do about 1.3-1.6x the work of one 2-thread process. A student trained in a
worker gives the same numbers as one trained here with the same thread count (a test checks it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from minikd.common import ROOT, atomic_write_text, get_device
from minikd.data import load_sft, read_jsonl, read_meta, write_jsonl
from minikd.distill import (filter_dataset, generate_dataset, merge_shards, seq_inter_dataset, shard_path,
                            teacher_fingerprint)
from minikd.evaluate import accuracy, answer_nll
from minikd.pipeline import PROFILES, get_profile, get_teacher, load_split, profile_dir, train_model
from minikd.report import markdown_table, mean_std, save_bar_chart
from minikd.tokenizer import Tokenizer
from minikd.train import load_model, sft_objective

WORD_KD = {"temperature": 1.0, "alpha": 0.5}  # T = 1 as in Kim & Rush; half hard CE, half KL
CHUNK = 2048  # prompts generated (and appended to disk) at a time
BEAM = 5  # beam width for the teacher's data and for beam-search evaluation
METHODS = ["gt", "word_kd", "seq_kd", "seq_kd_beam", "seq_kd+word", "seq_inter"]
# What each student trains on: the labelled training set, or one of the teacher's filtered files.
POOLS = {"gt": "ground truth", "word_kd": "ground truth", "seq_kd": "greedy", "seq_kd_beam": "beam",
         "seq_kd+word": "greedy", "seq_inter": "inter"}
TOKEN_KD = ("word_kd", "seq_kd+word")  # the methods that need the teacher's logits while the student trains
README_START, README_END = "<!-- showdown:start -->", "<!-- showdown:end -->"


def stage(n: int, title: str) -> float:
    print(f"\n== stage {n}: {title} ==", flush=True)
    return time.perf_counter()


def default_jobs(device) -> int:
    """Worker processes for the embarrassingly parallel stages: 2 on a CPU with 2+ cores, else 1.

    Small models use a core badly: on this project's 2-core machine, two 1-thread processes trained the
    student preset 1.35x and decoded greedily 1.6x faster than one 2-thread process. A GPU runs one."""
    return 2 if torch.device(device).type == "cpu" and (os.cpu_count() or 1) >= 2 else 1


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """`jobs` fresh processes ("spawn": nothing inherited from this one), the cores shared between them."""
    threads = max(1, torch.get_num_threads() // jobs)
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(threads,))


def data_paths(profile) -> dict[str, Path]:
    out = profile_dir(profile)
    return {"greedy": out / "teacher_greedy.jsonl", "beam": out / "teacher_beam.jsonl",
            "inter": out / "teacher_seq_inter.jsonl"}


def prompt_records(train_set: list[dict]) -> list[dict]:
    """The training prompts as the teacher sees them (with the ground truth, which seq-inter needs)."""
    return [{k: r[k] for k in ("id", "task", "prompt", "completion", "answer")} for r in train_set]


def label_shard(profile, rank: int, world_size: int, device="cpu", teacher=None) -> None:
    """The teacher's greedy answers and beam search (K = BEAM) for every world_size-th training prompt.

    One beam search serves two methods: its best answer (seq_kd_beam) and the candidate closest to the
    ground truth (seq_inter); both are stored in the seq-inter file. Runs in a worker process when
    world_size > 1 (the teacher is then read from its checkpoint)."""
    tok = Tokenizer.default()
    ckpt = profile_dir(profile) / "teacher.pt"
    if teacher is None:
        teacher, _ = load_model(ckpt, tok, device=str(device))
    records = prompt_records(load_split("train", profile, tok))
    paths = data_paths(profile)
    # Big chunks: prompts are batched by equal length inside a chunk, so larger chunks mean fuller batches.
    common = dict(teacher_ckpt=str(ckpt), chunk=CHUNK, stale="restart", rank=rank, world_size=world_size)
    generate_dataset(teacher, tok, records, paths["greedy"], method="greedy", **common)
    seq_inter_dataset(teacher, tok, records, paths["inter"], beam_size=BEAM, **common)


def _complete_for(path: Path, teacher, n: int) -> bool:
    """Does `path` look like a finished file of this teacher's answers to n prompts? (The full settings
    check happens in distill when the file is opened again.)"""
    meta = read_meta(path) if path.exists() else None
    return bool(meta and meta.get("complete") and meta.get("n_records") == n
                and meta.get("settings", {}).get("teacher") == teacher_fingerprint(teacher))


def teacher_data(profile, teacher, tok, train_set, times: dict, device="cpu", jobs: int = 1) -> dict[str, Path]:
    """Stages 3-4: the teacher's answers to the training prompts, stored as JSONL (cached)."""
    paths = data_paths(profile)
    t0 = stage(3, f"generate: the teacher answers {len(train_set)} training prompts, greedy and beam "
               f"K = {BEAM} (cached in {profile_dir(profile)})")
    cached = all(_complete_for(paths[k], teacher, len(train_set)) for k in ("greedy", "inter"))
    if jobs > 1 and not cached:
        # Split the prompts: worker r answers prompts r, r + jobs, ...; the shards merge back in prompt order.
        print(f"  {jobs} worker processes, one shard of the prompts each", flush=True)
        with worker_pool(jobs) as pool:
            list(pool.map(label_shard, [profile] * jobs, range(jobs), [jobs] * jobs, [str(device)] * jobs))
        for k in ("greedy", "inter"):
            merge_shards([shard_path(paths[k], r, jobs) for r in range(jobs)], paths[k])
    else:
        label_shard(profile, 0, 1, device, teacher=teacher)
    beam_best = [{**r, "completion": r["beam_completion"], "teacher_logprob": r["beam_logprob"],
                  "ended": r["beam_ended"]} for r in read_jsonl(paths["inter"])]
    write_jsonl(paths["beam"], beam_best)
    times["generate"] = time.perf_counter() - t0

    t0 = stage(4, "filter: drop truncated and too-long answers (the verifier only counts)")
    kept = {}
    for name, path in paths.items():
        kept[name] = path.with_name(path.stem + ".filtered.jsonl")
        report = filter_dataset(path, kept[name], tok, profile.block_size, verify=False)
        print(f"  {name}: {dict(report)}")
    times["filter"] = time.perf_counter() - t0
    return kept


def student_objective(method: str, teacher):
    if method in TOKEN_KD:
        from minikd.word_kd import word_kd_objective
        return word_kd_objective(teacher, **WORD_KD)
    return sft_objective


def student_settings(profile, method: str, seed: int, n_examples: int, teacher_id: str) -> dict:
    """Everything a cached student result depends on: a change to any of these retrains it."""
    return {"profile": profile.name, "preset": profile.student_preset, "steps": profile.student_steps,
            "batch_size": profile.batch_size, "lr": profile.student_lr, "seed": seed, "word_kd": WORD_KD,
            "beam": BEAM, "n_examples": n_examples, "teacher": teacher_id}


def train_student(profile, method: str, seed: int, kept: dict[str, Path], settings: dict, device="cpu") -> dict:
    """Train and measure one student; cache the result (with `settings`) in runs/<profile>/students/.

    Reads everything it needs from disk (data, the teacher's checkpoint), so it runs the same in this
    process or in a worker process."""
    tok = Tokenizer.default()
    test_set, heldout = load_split("test", profile, tok), load_split("heldout", profile, tok)
    teacher_examples = load_sft(kept["greedy"], tok, profile.block_size)[0]
    if POOLS[method] == "ground truth":
        examples = load_split("train", profile, tok)
    else:
        examples = load_sft(kept[POOLS[method]], tok, profile.block_size)[0]
    teacher = None
    if method in TOKEN_KD:  # only token-level KD needs the teacher while the student trains
        teacher, _ = load_model(profile_dir(profile) / "teacher.pt", tok, device=str(device))

    s0 = time.perf_counter()
    model, _ = train_model(profile.student_config(tok.vocab_size), examples, profile.student_steps, profile,
                           lr=profile.student_lr, seed=seed, objective=student_objective(method, teacher),
                           device=str(device), tok=tok, log_every=0)
    train_s = time.perf_counter() - s0
    metrics = measure(model, tok, test_set, heldout, teacher_examples[: len(test_set)])
    metrics.update(train_seconds=train_s, params=model.num_params(), stored_bytes=stored_bytes(examples),
                   teacher_at_train_time=teacher is not None)
    record = {"settings": settings, "metrics": metrics}
    atomic_write_text(profile_dir(profile) / "students" / f"{method}-seed{seed}.json", json.dumps(record, indent=1))
    print(f"  {method} seed {seed}: greedy {100 * metrics['greedy_acc']:.1f}%  beam {100 * metrics['beam_acc']:.1f}%  "
          f"({train_s:.0f} s training on {len(examples)} examples)", flush=True)
    return record


def run_students(profile, kept, n_train: int, teacher_id: str, seeds, device, times, jobs: int = 1) -> dict:
    """Stage 5: train every method with every seed (results cached per method and seed)."""
    out = profile_dir(profile) / "students"
    out.mkdir(parents=True, exist_ok=True)
    sizes = {name: sum(1 for _ in read_jsonl(path)) for name, path in kept.items()}
    sizes["ground truth"] = n_train
    t0 = stage(5, f"students: {len(METHODS)} methods x {len(seeds)} seed(s), {profile.student_steps} steps "
               f"of {profile.batch_size} sequences each")
    results, todo = {}, []
    for method in METHODS:
        for seed in seeds:
            settings = student_settings(profile, method, seed, sizes[POOLS[method]], teacher_id)
            cache = out / f"{method}-seed{seed}.json"
            if cache.exists() and json.loads(cache.read_text()).get("settings") == settings:
                print(f"  {method} seed {seed}: cached ({cache.name})")
                results[(method, seed)] = json.loads(cache.read_text())
            else:
                todo.append((method, seed, settings))
    # The token-level KD methods cost the most (a teacher forward every step): start them first.
    todo.sort(key=lambda job: job[0] not in TOKEN_KD)
    if todo:
        print(f"  training {len(todo)} student(s)" + (f" in {jobs} worker processes" if jobs > 1 else ""), flush=True)
    args = [(profile, method, seed, kept, settings, str(device)) for method, seed, settings in todo]
    if jobs > 1 and len(todo) > 1:
        with worker_pool(jobs) as pool:
            records = list(pool.map(train_student, *zip(*args)))
    else:
        records = [train_student(*a) for a in args]
    results.update({(method, seed): r for (method, seed, _), r in zip(todo, records)})
    times["students"] = time.perf_counter() - t0
    return results


def measure(model, tok, test_set, heldout, teacher_examples) -> dict:
    greedy = accuracy(model, tok, test_set)
    beam = accuracy(model, tok, test_set, method="beam", beam_size=BEAM)
    return {
        "greedy_acc": greedy["acc"], "beam_acc": beam["acc"], "acc_by_task": greedy["acc_by_task"],
        "heldout_acc": accuracy(model, tok, heldout)["acc"],
        "own_logprob": greedy["mean_logprob"],
        "nll_gt": answer_nll(model, test_set, tok.pad_id),
        "nll_teacher_data": answer_nll(model, teacher_examples, tok.pad_id),
    }


def stored_bytes(examples: list[dict]) -> int:
    """Bytes of training signal the student reads: the UTF-8 text of every stored completion."""
    return sum(len(e["completion"].encode("utf-8")) for e in examples)


def build_table(results: dict, teacher_metrics: dict, seeds: list[int], times: dict) -> str:
    def fmt(method, key, scale=100.0, digits=1):
        vals = [results[(method, s)]["metrics"][key] for s in seeds]
        m, sd = mean_std(vals)
        return f"{m * scale:.{digits}f}" + (f" ± {sd * scale:.{digits}f}" if len(vals) > 1 else "")
    header = ["method", "greedy acc %", "beam-5 acc %", "beam − greedy", "held-out %", "log p(own output)",
              "NLL ground truth", "NLL teacher data", "stored signal", "teacher at train time", "train s",
              "params"]
    rows = []
    for method in METHODS:
        gaps = [results[(method, s)]["metrics"]["beam_acc"] - results[(method, s)]["metrics"]["greedy_acc"]
                for s in seeds]
        gm, gsd = mean_std(gaps)
        m0 = results[(method, seeds[0])]["metrics"]
        rows.append([method, fmt(method, "greedy_acc"), fmt(method, "beam_acc"),
                     f"{100 * gm:+.1f}" + (f" ± {100 * gsd:.1f}" if len(seeds) > 1 else ""),
                     fmt(method, "heldout_acc"), fmt(method, "own_logprob", 1, 2), fmt(method, "nll_gt", 1, 3),
                     fmt(method, "nll_teacher_data", 1, 3), f"{m0['stored_bytes'] / 1e3:.0f} kB text",
                     "yes" if m0["teacher_at_train_time"] else "no", fmt(method, "train_seconds", 1, 0),
                     f"{m0['params']:,}"])
    t = teacher_metrics
    rows.append(["teacher (reference)", f"{100 * t['greedy_acc']:.1f}", f"{100 * t['beam_acc']:.1f}",
                 f"{100 * (t['beam_acc'] - t['greedy_acc']):+.1f}", f"{100 * t['heldout_acc']:.1f}",
                 f"{t['own_logprob']:.2f}", f"{t['nll_gt']:.3f}", f"{t['nll_teacher_data']:.3f}", "—", "—",
                 f"{t.get('train_seconds', 0):.0f}", f"{t['params']:,}"])
    return markdown_table(header, rows)


def update_readme(block: str, readme: Path = ROOT / "README.md") -> bool:
    """Replace the text between the showdown markers in the README (False if the markers are missing)."""
    if not readme.exists():
        return False
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    new = re.sub(re.escape(README_START) + ".*?" + re.escape(README_END),
                 lambda _: f"{README_START}\n{block}\n{README_END}", text, flags=re.S)
    atomic_write_text(readme, new)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="minikd run", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="the same path on tiny settings (about a minute)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None, help="overrides --quick")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per method (3 for the full table)")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes for generation and students (default: 2 on a CPU with 2+ cores)")
    parser.add_argument("--retrain-teacher", action="store_true", help="ignore the cached teacher")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README's results block")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile or ("quick" if args.quick else "default"))
    seeds = list(range(args.seeds))
    device = get_device(args.device)
    jobs = args.jobs if args.jobs is not None else default_jobs(device)
    if jobs < 1:
        parser.error(f"--jobs must be >= 1, got {jobs}")
    start, times = time.perf_counter(), {}

    t0 = stage(1, "tokenizer")
    tok = Tokenizer.default()
    print(f"  shipped BPE: {tok.vocab_size} tokens, fingerprint {tok.fingerprint}")
    train_set = load_split("train", profile, tok)
    test_set, heldout = load_split("test", profile, tok), load_split("heldout", profile, tok)
    times["tokenizer"] = time.perf_counter() - t0

    t0 = stage(2, f"teacher ({profile.teacher_preset} preset, {profile.teacher_steps} steps)")
    teacher, info = get_teacher(profile, device=str(device), retrain=args.retrain_teacher)
    times["teacher"] = time.perf_counter() - t0

    kept = teacher_data(profile, teacher, tok, train_set, times, device=device, jobs=jobs)
    teacher_examples = load_sft(kept["greedy"], tok, profile.block_size)[0]
    results = run_students(profile, kept, len(train_set), teacher_fingerprint(teacher), seeds, device, times,
                           jobs=jobs)

    t0 = stage(6, "measure the teacher and write the table")
    teacher_metrics = measure(teacher, tok, test_set, heldout, teacher_examples[: len(test_set)])
    teacher_metrics.update(params=teacher.num_params(), train_seconds=info.get("train_seconds", 0.0))
    times["measure"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - start
    table = build_table(results, teacher_metrics, seeds, times)
    out = profile_dir(profile)
    header = (f"Profile `{profile.name}`, seeds {seeds}, student `{profile.student_preset}` preset, "
              f"{profile.student_steps} steps x {profile.batch_size} sequences for every method; word-level KD with "
              f"T = {WORD_KD['temperature']}, α = {WORD_KD['alpha']}; beam K = {BEAM}; test set {len(test_set)} "
              f"prompts, held-out {len(heldout)}. Wall time of this run: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + ".")
    block = header + "\n\n" + table
    atomic_write_text(out / "results.md", block + "\n")
    atomic_write_text(out / "results.json", json.dumps(
        {"seeds": seeds, "times": times, "teacher": teacher_metrics,
         "students": {f"{m}-seed{s}": r for (m, s), r in results.items()}}, indent=1))
    print("\n" + block)
    print(f"\nwritten: {out / 'results.md'}, {out / 'results.json'}")
    groups = {"greedy": [], "beam-5": []}
    errors = {"greedy": [], "beam-5": []}
    for method in METHODS:
        for key, name in (("greedy_acc", "greedy"), ("beam_acc", "beam-5")):
            m, sd = mean_std([results[(method, s)]["metrics"][key] * 100 for s in seeds])
            groups[name].append(m)
            errors[name].append(sd)
    png = save_bar_chart(out / "showdown.png", METHODS, groups, errors, "test accuracy %",
                         f"students, {len(seeds)} seed(s)")
    if png:
        print(f"chart: {png}")
    if profile.name == "default" and not args.no_readme:
        if update_readme(block):
            print("README.md results block updated")
    print(f"\ntotal wall time {times['total']:.0f} s")
    return {"results": results, "teacher": teacher_metrics, "times": times}


if __name__ == "__main__":
    main()
