"""Results rendering, the one home: what the showdown found (tables, learning curves and verdicts, rendered
from results.json alone) and what lessons 11-16 found (saved by each lesson, rendered from those files).

Nothing here trains or measures; every number comes from the results dict the main job wrote, and every
sentence is a `verdict.claim` over the seeds (mean difference, 95 % interval, "not separable" when the
interval holds 0). `minikd readme` copies `render(results)` into the README between its markers.

Lessons 11-16's findings. The main job (`minikd`) fits in ten minutes on two cores; on-policy distillation (lesson 13) and reasoning
traces (lesson 14) take about three more minutes each, so they are their own commands, not rows of the main
job's table. Each of these lessons ends by calling `save_lesson(...)`: runs/<profile>/lessons/<lesson>.json then holds
its command, seeds, wall time, a table of its numbers and every claim it made WITH the numbers the claim was
decided from. `minikd readme` re-decides each claim from those numbers (minikd.verdict.decide)
and writes the tables and sentences between the README's lessons markers.

    python -m lessons.l13_on_policy        # ... -> runs/default/lessons/l13_on_policy.json
    minikd readme                          # the README's results: the main job's and these lessons'
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from minikd.runtime import ROOT, atomic_write_text, get_device, runs_dir
from minikd.charts import ascii_chart, markdown_table, save_band_plot
from minikd.verdict import mean_std
from minikd.verdict import Claim, Paired, decide, mean_interval

README_START, README_END = "<!-- showdown:start -->", "<!-- showdown:end -->"
REACH = 0.9  # "steps to reach": the first curve point at REACH x the teacher's greedy test accuracy


# ---------------------------------------------------------------------------------------------------
# Reading the results

def per_seed(results: dict, method: str, key: str = "greedy_acc", long: bool = False) -> list[float]:
    """One number per seed (the plateau seeds for long=True), in seed order."""
    runs = results["long"] if long else results["students"]
    seeds = results["plateau"]["seeds"] if long else results["seeds"]
    return [runs[f"{method}-seed{s}"]["metrics"][key] for s in seeds]


def per_seed_family(results: dict, method: str, family: str, key: str = "acc_by_task") -> list[float]:
    return [results["students"][f"{method}-seed{s}"]["metrics"][key][family] for s in results["seeds"]]


def families(results: dict) -> list[str]:
    return sorted(results["teacher"]["acc_by_task"])


def steps_to_reach(curve: list[dict], target: float) -> int | None:
    """The first measured step whose accuracy is at least `target` (None: never along this run)."""
    return next((p["step"] for p in curve if p["acc"] >= target), None)


def reach_steps(results: dict, method: str) -> list[int | None]:
    target = REACH * results["teacher"]["greedy_acc"]
    return [steps_to_reach(results["students"][f"{method}-seed{s}"]["metrics"]["curve"], target)
            for s in results["seeds"]]


# ---------------------------------------------------------------------------------------------------
# Verdicts

def claims(results: dict) -> list[Claim]:
    """Every statement the showdown makes, each decided by the seeds (or, for the labels, by prompt); not yet
    said (verdict.say prints and logs one). On the quick profile an undecided verdict reads "needs the default run"."""
    fast = results["profile"] == "quick"
    def acc(m, key="greedy_acc", long=False):
        return per_seed(results, m, key, long)

    ran = set(results["methods"])

    def vs(text, a, b, expect, what, long=False, key="greedy_acc"):
        if not {a, b} <= ran:
            return None  # a method this run did not train (the default run leaves out the beam-based two)
        return decide(text, acc(a, key, long), acc(b, key, long), expect,
                     f"{a} − {b}, {what}", scale=100, unit="points", fast=fast)

    budget = f"test accuracy at {results['steps']} steps"
    out = [
        vs("sequence-level KD beats the ground-truth student (Kim & Rush 2016)", "seq_kd", "gt", ">", budget),
        vs("sequence-level KD beats word-level KD (Kim & Rush 2016)", "seq_kd", "word_kd", ">", budget),
        vs("word-level KD beats the ground-truth student (Hinton et al. 2015; Kim & Rush 2016)",
           "word_kd", "gt", ">", budget),
        decide("a seq-KD student's greedy answers are as good as its beam-search answers (Kim & Rush 2016)",
              acc("seq_kd", "beam_acc"), acc("seq_kd"), "≈", "seq_kd: beam − greedy test accuracy",
              scale=100, unit="points", fast=fast),
        vs("seq-KD + word-KD beats seq-KD alone (Kim & Rush 2016)", "seq_kd+word", "seq_kd", ">", budget),
        vs("seq-inter beats seq-KD (Kim & Rush 2016)", "seq_inter", "seq_kd", ">", budget),
        vs("the teacher's beam-search answers teach better than its greedy answers",
           "seq_kd_beam", "seq_kd", ">", budget),
        vs("the teacher's answers to unlabelled prompts teach as well as its answers to labelled ones",
           "seq_kd_unlabelled", "seq_kd", "≈", budget),
        vs("seq-KD beats the ground-truth student on the held-out cases", "seq_kd", "gt", ">",
           "held-out accuracy", key="heldout_acc"),
        vs("seq-KD beats word-level KD on the held-out cases", "seq_kd", "word_kd", ">",
           "held-out accuracy", key="heldout_acc"),
    ]
    for fam in families(results):
        out.append(decide(f"seq-KD beats the ground-truth student on `{fam}`", per_seed_family(results, "seq_kd", fam),
                         per_seed_family(results, "gt", fam), ">", f"seq_kd − gt, {fam} test accuracy",
                         scale=100, unit="points", fast=fast))
    t = results["teacher"]
    out.append(decide("the teacher's single most likely (greedy) answer is right more often than a sample from its "
                     "distribution at T = 1", t["greedy_correct"], t["sampled_correct"], ">",
                     "teacher greedy − sampled, share right on the test prompts (paired by prompt)",
                     scale=100, unit="points", fast=fast))
    lvt = results["labels_vs_teacher"]
    out.append(decide("the teacher beats its own labels: its greedy answers to the training prompts are right more "
                     "often than the labels", lvt["teacher_correct"], lvt["label_correct"], ">",
                     "teacher − labels, share right on the training prompts (paired by prompt)",
                     scale=100, unit="points", fast=fast))
    if results.get("plateau"):
        x = results["plateau"]["factor"]
        at = f"test accuracy at {x} x the budget"
        out += [vs(f"with {x}x the steps, seq-KD still beats the ground-truth student", "seq_kd", "gt", ">", at, True),
                vs(f"with {x}x the steps, seq-KD still beats word-level KD", "seq_kd", "word_kd", ">", at, True),
                vs(f"with {x}x the steps, word-level KD beats the ground-truth student", "word_kd", "gt", ">", at, True),
                vs(f"with {x}x the steps, seq-KD beats the ground-truth student on the held-out cases", "seq_kd", "gt",
                   ">", f"held-out accuracy at {x} x the budget", True, key="heldout_acc"),
                vs(f"with {x}x the steps, seq-KD beats word-level KD on the held-out cases", "seq_kd", "word_kd",
                   ">", f"held-out accuracy at {x} x the budget", True, key="heldout_acc")]
    return [c for c in out if c is not None]


# ---------------------------------------------------------------------------------------------------
# Tables

def _pm(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    m, sd = mean_std(values)
    return f"{m * scale:.{digits}f}" + (f" ± {sd * scale:.{digits}f}" if len(values) > 1 else "")


def reach_text(steps: list[int | None]) -> str:
    got = [s for s in steps if s is not None]
    if not got:
        return "not reached"
    text = _pm(got, 1, 0)
    return text if len(got) == len(steps) else f"{text} ({len(got)}/{len(steps)} seeds)"


def data_table(results: dict) -> str:
    fams = families(results)
    header = ["data", "right answers %"] + [f"{f} right %" for f in fams] + [f"{f} form entropy (bits)" for f in fams]
    rows = []
    for name, d in results["data"].items():
        rows.append([name, f"{100 * d['acc']:.1f}"] + [f"{100 * d['acc_by_task'][f]:.1f}" for f in fams]
                    + [f"{d['form_entropy_bits'][f]:.2f}" for f in fams])
    return markdown_table(header, rows)


def student_table(results: dict) -> str:
    fams, t = families(results), results["teacher"]
    long = results.get("plateau")
    header = (["method", "test %"] + [f"{f} %" for f in fams]
              + [f"beam % ({', '.join(results['beam_eval'])})", "held-out %", f"steps to {REACH:.0%} of teacher"]
              + ([f"{long['factor']}x steps %", f"{long['factor']}x steps held-out %"] if long else [])
              + ["NLL ground truth", "NLL teacher answers", "train s", "stored signal"])
    rows = []
    for m in results["methods"]:
        first = results["students"][f"{m}-seed{results['seeds'][0]}"]["metrics"]
        beam = _pm(per_seed(results, m, "beam_acc")) if first["beam_acc"] is not None else "—"
        rows.append([m, _pm(per_seed(results, m))]
                    + [_pm(per_seed_family(results, m, f)) for f in fams]
                    + [beam, _pm(per_seed(results, m, "heldout_acc")),
                       reach_text(reach_steps(results, m))]
                    + ([_pm(per_seed(results, m, long=True)), _pm(per_seed(results, m, "heldout_acc", long=True))]
                       if long else [])
                    + [_pm(per_seed(results, m, "nll_gt"), 1, 3), _pm(per_seed(results, m, "nll_teacher_data"), 1, 3),
                       _pm(per_seed(results, m, "train_seconds"), 1, 0), stored_signal(first)])
    rows.append(["teacher (reference)", f"{100 * t['greedy_acc']:.1f}"]
                + [f"{100 * t['acc_by_task'][f]:.1f}" for f in fams]
                + [f"{100 * t['beam_acc']:.1f}", f"{100 * t['heldout_acc']:.1f}", "—"] + (["—", "—"] if long else [])
                + [f"{t['nll_gt']:.3f}", f"{t['nll_teacher_data']:.3f}", f"{t.get('train_seconds', 0):.0f}", "—"])
    return markdown_table(header, rows)


def stored_signal(metrics: dict) -> str:
    """What the student read: the answers' text, plus the teacher's distributions for token-level KD."""
    text = f"{metrics['text_bytes'] / 1e3:.0f} kB text"
    return text + (f" + {metrics['logit_bytes'] / 1e6:.0f} MB logits" if metrics["logit_bytes"] else "")


def sweep_table(results: dict) -> str:
    rows = [[f"{s['temperature']}", f"{s['alpha']}", f"{100 * s['val_acc']:.1f}",
             "chosen" if {k: s[k] for k in ("temperature", "alpha")} == results["word_kd"] else ""]
            for s in results["word_kd_sweep"]]
    return markdown_table(["T", "α", "validation accuracy %", ""], rows)


# ---------------------------------------------------------------------------------------------------
# Curves

def curve_series(results: dict) -> dict[str, tuple[list[int], list[float], list[float], list[float]]]:
    """method -> (steps, mean accuracy %, lower, upper): the 95 % band over seeds at each measured step."""
    out = {}
    for m in results["methods"]:
        curves = [results["students"][f"{m}-seed{s}"]["metrics"]["curve"] for s in results["seeds"]]
        steps = [p["step"] for p in curves[0]]
        mean, lo, hi = [], [], []
        for i in range(len(steps)):
            iv = mean_interval([100 * c[i]["acc"] for c in curves])
            mean.append(iv.mean)
            lo.append(iv.lo if iv.n > 1 else iv.mean)
            hi.append(iv.hi if iv.n > 1 else iv.mean)
        out[m] = (steps, mean, lo, hi)
    return out


CHART_METHODS = ("gt", "word_kd", "seq_kd")  # the terminal chart draws the three main methods (letters overlap)


def curve_chart(results: dict) -> str:
    series = {m: (xs, ys) for m, (xs, ys, _, _) in curve_series(results).items() if m in CHART_METHODS}
    return ascii_chart(series, xlabel="student step", ylabel="test accuracy %",
                       hline=(100 * results["teacher"]["greedy_acc"], "teacher"))


def curve_table(results: dict) -> str:
    """Every method's learning curve as numbers: mean test accuracy % over seeds at each measured step."""
    series = curve_series(results)
    steps = next(iter(series.values()))[0]
    rows = [[m] + [f"{y:.1f}" for y in ys] for m, (_, ys, _, _) in series.items()]
    return markdown_table(["method \\ step"] + [str(x) for x in steps], rows)


def save_curve_plot(results: dict, path) -> Path | None:
    """accuracy vs step, one line per method with its 95 % band over seeds (None without matplotlib)."""
    return save_band_plot(path, curve_series(results), xlabel="student step", ylabel="test accuracy %",
                          title=f"students' learning curves, {len(results['seeds'])} seeds (95 % bands)",
                          hline=(100 * results["teacher"]["greedy_acc"], "teacher greedy"))


# ---------------------------------------------------------------------------------------------------
# The whole report

def render(results: dict) -> str:
    t, r = results["teacher"], results
    beam = r["beam"]
    wk = r["word_kd"]
    head = (f"Profile `{r['profile']}`: seeds {r['seeds']}; teacher `{r['teacher_preset']}` preset, "
            f"{r['teacher_steps']} steps; every student the `{r['student_preset']}` preset, {r['steps']} steps x "
            f"{r['batch_size']} sequences (the budget); word-level KD with T = {wk['temperature']}, α = {wk['alpha']}, "
            f"chosen on {r['n_val']} held-back training prompts; beam K = {beam['beam_size']}, length penalty "
            f"{beam['length_penalty']}; test set {r['n_test']} prompts never trained on; held-out {r['n_heldout']} "
            f"cases of a kind kept out of training (a carry in every column, a digit three times). "
            f"± is the standard deviation over seeds.")
    parts = [head, "", "**What each data set teaches** (answers checked by the verifier; form entropy 0 = one "
             "phrasing always):", "", data_table(r), "",
             f"On the test prompts the teacher's greedy answers are right {100 * t['greedy_acc']:.1f} % of the time, "
             f"its samples at T = 1 {100 * t['sampled']['acc']:.1f} %: token-level KD copies the distribution the "
             f"samples come from, sequence-level KD the greedy answer.", "",
             "**Students** (test = never-trained-on prompts):", "", student_table(r), ""]
    left_out = [m for m in r.get("all_methods", r["methods"]) if m not in r["methods"]]
    if left_out:
        parts += [f"Not run here: {', '.join(left_out)} (they need the teacher's beam search or its answers to the "
                  "unlabelled prompts; `minikd --full` or `minikd --seeds N` adds them).", ""]
    parts += ["**Learning curves** (test accuracy %, mean over seeds, at each measured step):", "", curve_table(r), "",
             "```", curve_chart(r), "```", "",
             "**Word-level KD's T and α** (validation slice of the training set, seed 0):", "", sweep_table(r), "",
             "**Verdicts** (paired over seeds: mean difference, 95 % t interval; \"not separable\" when it holds 0):",
             ""]
    parts += [f"- {c.sentence()}" for c in claims(r)]
    times = r["times"]
    parts += ["", "Wall time of this run: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
              + f" ({r.get('world_size', r['jobs'])} process(es), device {r['device']})."]
    return "\n".join(parts)


def load_results(profile: str = "default") -> dict:
    path = runs_dir() / profile / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no results yet; run `minikd` (or `minikd --seeds 5`) first")
    return json.loads(path.read_text())


def replace_between(text: str, block: str, start: str = README_START, end: str = README_END) -> str | None:
    """text with everything between the start and end markers replaced by block (None: markers missing)."""
    if start not in text or end not in text:
        return None
    return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{block}\n{end}", text, flags=re.S)


def update_readme(block: str, readme: Path = ROOT / "README.md") -> bool:
    """Replace the text between the showdown markers in the README (False if the file or markers are missing)."""
    new = replace_between(readme.read_text(), block) if readme.exists() else None
    if new is None:
        return False
    atomic_write_text(readme, new)
    return True


# ---------------------------------------------------------------------------------------------------
# Lessons 11-16: what each lesson found, saved by the lesson, rendered here

LESSONS = {  # module -> what its results are called in the README, in reading order
    "l11_what_seqkd_loses": "Lesson 11 — what sequence-level KD loses (lost alternatives, locked phrasing, "
                            "exposure bias)",
    "l12_distilled_errors": "Lesson 12 — the teacher's errors are distilled too",
    "l13_on_policy": "Lesson 13 — on-policy distillation from the seq-KD student, at equal compute",
    "l14_reasoning_traces": "Lesson 14 — reasoning traces vs final answers (DeepSeek-R1's recipe in miniature)",
    "l15_teacher_over_http": "Lesson 15 — the teacher over HTTP: labelling through minikd serve gives the stored answers",
    "l16_another_tokenizer": "Lesson 16 — a student with its own tokenizer, from the stored teacher text: ground truth "
                             "vs seq-KD vs ULD (Boizard et al. 2024)",
}
LESSONS_START, LESSONS_END = "<!-- lessons:start -->", "<!-- lessons:end -->"


def lesson_path(lesson: str, profile: str) -> Path:
    return runs_dir() / profile / "lessons" / f"{lesson}.json"


def claim_record(c: Claim) -> dict:
    """A claim as JSON: what it says and the numbers it was decided from (a fact: its truth and evidence)."""
    record = {"text": c.text, "expect": c.expect, "what": c.what, "unit": c.unit, "fast": c.fast,
              "verdict": c.verdict}
    if c.diff is None:
        return record | {"fact": bool(c.fact)}
    if c.inputs is None:
        raise ValueError(f"claim {c.text!r} has no inputs to save (make it with minikd.verdict.decide/claim)")
    b = c.inputs["b"]  # floats: JSON-safe whatever they were (bools, numpy scalars)
    b = float(b) if isinstance(b, (int, float)) else [float(x) for x in b]
    return record | {"a": [float(x) for x in c.inputs["a"]], "b": b, "scale": c.inputs["scale"], "over": c.over,
                     "seed": c.seed, "models": c.models}


def claim_from_record(r: dict) -> Claim:
    """The claim again, its verdict decided anew from the saved numbers by the same rule (a fact keeps its computed
    truth; a claim over seeds or prompts keeps its unit, so one training run still cannot decide a method)."""
    if "fact" in r:
        return Claim(r["text"], "=", r["what"], None, "", fact=r["fact"], fast=r["fast"])
    over = r.get("over")  # absent in results saved before the unit was
    what = Paired(r["what"], over, r.get("seed"), r.get("models") or "these two models") if over else r["what"]
    return decide(r["text"], r["a"], r["b"], r["expect"], what, r["scale"], r["unit"], r["fast"])


def save_lesson(lesson: str, args, claims: list[Claim], table: tuple[list[str], list[list]] | None = None,
         seconds: float | None = None, seeds: list[int] | None = None, notes: str = "") -> Path:
    """runs/<profile>/lessons/<lesson>.json (profile quick for --fast); returns the path.
    table: (header, rows) with the numbers pre-formatted; seeds: the seeds the lesson ran."""
    if lesson not in LESSONS:
        raise ValueError(f"unknown lesson {lesson!r}; known: {', '.join(LESSONS)}")
    profile = "quick" if args.fast else "default"
    record = {"lesson": lesson, "title": LESSONS[lesson], "profile": profile, "fast": bool(args.fast),
              "command": " ".join([f"python -m lessons.{lesson}", *getattr(args, "argv", ["--fast"] if args.fast else [])]),
              "seeds": seeds if seeds is not None else [getattr(args, "seed", 0)],
              "device": str(get_device(getattr(args, "device", "cpu"))), "seconds": seconds, "notes": notes,
              "table": {"header": table[0], "rows": table[1]} if table else None,
              "claims": [claim_record(c) for c in claims]}
    path = lesson_path(lesson, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"  (results saved to {path}; `minikd readme` copies them into the README)")
    return path


def render_lesson(record: dict) -> str:
    """One lesson's block: heading, how it ran, its table, its claims decided anew."""
    took = f", {record['seconds'] / 60:.1f} min" if record.get("seconds") else ""
    seeds = f", seeds {record['seeds']}" if record.get("seeds") else ""
    parts = [f"**{record['title']}** (`{record['command']}`{seeds}{took}, device {record['device']})", ""]
    if record.get("notes"):
        parts += [record["notes"], ""]
    if record.get("table"):
        parts += [markdown_table(record["table"]["header"], record["table"]["rows"]), ""]
    parts += [f"- {claim_from_record(c).sentence()}" for c in record["claims"]]
    return "\n".join(parts)


def render_lessons(profile: str = "default") -> str:
    """Every saved lesson's block, in reading order; a lesson not run yet is named with its command."""
    blocks, missing = [], []
    for lesson in LESSONS:
        path = lesson_path(lesson, profile)
        if path.exists():
            blocks.append(render_lesson(json.loads(path.read_text())))
        else:
            missing.append(f"`python -m lessons.{lesson}`")
    if missing:
        blocks.append("Not run yet for this README: " + ", ".join(missing) + ".")
    return "\n\n".join(blocks)


def main(argv=None) -> int:
    """`minikd readme`: copy runs/<profile>/results.json's tables and verdicts into README.md, and lessons
    11-16's saved results (runs/<profile>/lessons/*.json, save_lesson) between their own markers."""
    import argparse
    p = argparse.ArgumentParser(prog="minikd readme", description=main.__doc__)
    p.add_argument("--profile", default="default", help="whose results (default: default)")
    p.add_argument("--readme", default=str(ROOT / "README.md"), help="the file to update")
    p.add_argument("--only", choices=["showdown", "lessons"], default=None,
                   help="update one block only: the main job's (showdown) or lessons 11-16's (default: both)")
    args = p.parse_args(argv)
    readme = Path(args.readme)
    text = readme.read_text() if readme.exists() else ""
    blocks = []
    if args.only != "lessons":
        blocks.append((README_START, README_END, render(load_results(args.profile))))
    if args.only != "showdown":
        blocks.append((LESSONS_START, LESSONS_END, render_lessons(args.profile)))
    for start, end, block in blocks:
        text = replace_between(text, block, start, end)
        if text is None:
            raise ValueError(f"{readme}: no {start} ... {end} markers to write between")
    atomic_write_text(readme, text)  # both blocks or nothing
    print(f"{readme}: {', '.join(start for start, _, _ in blocks)} updated from {runs_dir() / args.profile}")
    return 0
