"""The lab report page: one self-contained HTML file that shows a whole run to a class.

`minikd` (and `--quick`, `--full`, `--seeds N`) writes runs/<profile>/report.html at its end; `minikd report
[--profile P] [--out F]` rebuilds it from runs/<profile>/results.json (and lessons 11-16's saved results,
runs/<profile>/lessons/*.json, when they exist) alone. Inline SVG (minikd.svg_charts) and CSS only: no script,
no font, no image fetched, so it opens from disk offline, prints on A4 and reads on a projector.

Every verdict is decided anew from the numbers (minikd.machinery.rendering: claims, claim_from_record), never
read from saved sentences. Every number on the page sits in a `<span class="num">` that names where it
comes from in results.json (data-path, or data-paths + data-op for a mean over seeds, or data-claim for a
verdict's interval), so the browser test can parse each one back and compare it with the file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from html import escape
from pathlib import Path

from minikd import svg_charts
from minikd.machinery import rendering
from minikd.runtime import DATA_DIR, ROOT, atomic_write_text, runs_dir
from minikd.verdict import mean_interval

NEEDED = ("profile", "methods", "seeds", "steps", "teacher", "students", "word_kd", "word_kd_sweep",
          "labels_vs_teacher", "times", "device", "data")  # what a results.json of the main job always holds
CHECK, CROSS = "✓", "✗"


class ReportError(ValueError):
    """Bad input for the page: one line naming the file and what is wrong (the CLI exits 2 on it)."""


def git_commit() -> str | None:
    """The checkout's commit (with "+changes" when files differ from it); None outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "") if head.returncode == 0 else None


def load(path: Path) -> dict:
    """results.json, or a ReportError naming the file and what is wrong with it."""
    if not path.exists():
        raise ReportError(f"{path}: no such file; run `minikd` (or `minikd --quick`) first")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{path}: not valid JSON ({e}); truncated? run `minikd` again to rewrite it") from None
    if not isinstance(results, dict):
        raise ReportError(f"{path}: not a minikd results.json (a JSON {type(results).__name__}, not an object)")
    missing = [k for k in NEEDED if k not in results]
    if missing:
        raise ReportError(f"{path}: not a minikd results.json (no field {', '.join(map(repr, missing))})")
    return results


def load_lessons(folder: Path) -> list[dict]:
    """Lessons 11-16's saved results in reading order (those that exist)."""
    out = []
    for lesson in rendering.LESSONS:
        path = folder / f"{lesson}.json"
        if path.exists():
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ReportError(f"{path}: not valid JSON ({e})") from None
    return out


# ---------------------------------------------------------------------------------------------------
# Numbers that say where they come from

def num(value: float, path: str, scale: float = 100, fmt: str = ".1f") -> str:
    """One number of results.json at `path` ("teacher/acc_by_task/sort"), shown as value x scale."""
    return (f'<span class="num" data-path="{escape(path)}" data-scale="{scale:g}" data-fmt="{fmt}">'
            f"{format(value * scale, fmt)}</span>")


def count(results: dict, key: str) -> str:
    """A whole number of results.json's top level ("?" for an older file without it)."""
    return num(results[key], key, 1, ".0f") if isinstance(results.get(key), (int, float)) else "?"


def seed_paths(results: dict, method: str, *keys: str, long: bool = False) -> list[str]:
    """The paths of one metric of one method, one per seed (the plateau seeds for long=True)."""
    runs, seeds = ("long", results["plateau"]["seeds"]) if long else ("students", results["seeds"])
    return ["/".join([runs, f"{method}-seed{s}", "metrics", *keys]) for s in seeds]


def get(results: dict, path: str):
    value = results
    for key in path.split("/"):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def mean_sd(results: dict, paths: list[str], scale: float = 100, fmt: str = ".1f") -> str:
    """mean ± sd over seeds (the sd only with 2+ seeds), each a span naming its paths."""
    values = [get(results, p) for p in paths]
    iv, joined = mean_interval(values), escape(";".join(paths))
    text = (f'<span class="num" data-op="mean" data-paths="{joined}" data-scale="{scale:g}" data-fmt="{fmt}">'
            f"{format(iv.mean * scale, fmt)}</span>")
    if len(values) > 1:
        sd = (sum((v - iv.mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        text += (f' ± <span class="num" data-op="sd" data-paths="{joined}" data-scale="{scale:g}" '
                 f'data-fmt="{fmt}">{format(sd * scale, fmt)}</span>')
    return text


def claim_html(c, where: str) -> str:
    """A verdict: its mark, its sentence, and its interval as numbers the test recomputes (data-claim)."""
    d = c.diff
    if d is None:
        return f'<li class="verdict" data-claim="{where}" data-verdict="{escape(c.verdict)}">' \
               f'<b>[{escape(c.verdict)}]</b> {escape(c.text)} — {escape(c.what)}</li>'
    span = lambda field, v: f'<span class="num" data-claim="{where}" data-field="{field}" data-fmt="+.2f">{v:+.2f}</span>'
    interval = (f", 95 % CI [{span('lo', d.lo)}, {span('hi', d.hi)}], n = {d.n}" if d.n > 1
                else " (one value: no interval)")
    return (f'<li class="verdict" data-claim="{where}" data-verdict="{escape(c.verdict)}"><b>[{escape(c.verdict)}]'
            f"</b> {escape(c.text)} — {escape(c.what)}: {span('mean', d.mean)} {escape(c.unit)}{interval}</li>")


def mark(c) -> str:
    """The forest plot's three marks: holds, not separable (the interval holds 0), does not hold."""
    if c.holds or c.found == c.expect:
        return "holds"
    return "not separable" if c.found == "≈" else "does not hold"


def table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table; cells are HTML already (numbers are spans)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure(svg: str, caption: str) -> str:
    return f'<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>'


# ---------------------------------------------------------------------------------------------------
# The sections, in the order a class meets them

def shipped_examples() -> tuple[list[dict], list[dict]]:
    """The first two training records of data/train.jsonl whose label the verifier accepts, and the first
    it rejects (the shipped data is fixed, so the page stays a function of its inputs)."""
    from minikd.evaluate import score
    with (DATA_DIR / "train.jsonl").open(encoding="utf-8") as f:
        train = [json.loads(line) for _, line in zip(range(50), f)]
    right = [r for r in train if score(r["prompt"], r["completion"])][:2]
    return right, [r for r in train if not score(r["prompt"], r["completion"])][:1]


def world_section(results: dict) -> str:
    """The families, the label noise, and three training prompts with their label marked right or wrong."""
    world = json.loads((DATA_DIR / "world.json").read_text(encoding="utf-8"))
    right, wrong = shipped_examples()
    rows = [[escape(r["task"]), f"<code>{escape(r['prompt'])}</code>", f"<code>{escape(r['completion'])}</code>",
             f'<span class="ok">{CHECK} right</span>' if r in right else f'<span class="bad">{CROSS} wrong</span>']
            for r in right + wrong]
    share = sum(results["labels_vs_teacher"]["label_correct"]) / len(results["labels_vs_teacher"]["label_correct"])
    return _world_html(world, rows, share)


def _world_html(world: dict, rows: list[list[str]], share: float) -> str:
    return (f"<h2>1. The world</h2><p>Prompts whose answers a program checks, in {len(world['families'])} families "
            f"({escape(', '.join(world['families']))}), each answer in several surface forms. "
            f"{world['noise'] * 100:.0f} % of the shipped training labels are deliberately wrong "
            f"(data/world.json); in this run's training set "
            f'<span class="num" data-op="mean" data-paths="labels_vs_teacher/label_correct" data-scale="100" '
            f'data-fmt=".1f">{share * 100:.1f}</span> % of the labels are right.</p>'
            + table(["family", "training prompt", "its label", "label"], rows, "examples")
            + "<p>Three training prompts of data/train.jsonl: the first two right labels and the first wrong one, "
            "each checked by the world's verifier.</p>")


def mask_section() -> str:
    """The response mask drawn over the real tokens of a training example (Tokenizer.render)."""
    from minikd.tokenizer import Tokenizer
    tok, r = Tokenizer.default(), shipped_examples()[0][0]
    ids, mask = tok.render(r["prompt"], r["completion"])
    cells = "".join(f'<span class="tok{" on" if m else ""}">{escape(tok.decode([i]).replace(" ", "␣"))}</span>'
                    for i, m in zip(ids, mask))
    return ("<h2>2. The response mask</h2><p>The prompt and the answer as the model reads them, token by token "
            "(the shipped BPE; ␣ is a space). The loss is computed on the shaded tokens only: the answer and the "
            f"end token, {sum(mask)} of {len(ids)} here. The same mask selects the positions of the "
            f'sequence-level NLL and of the word-level KL.</p><p class="tokens">{cells}</p>')


def teacher_section(results: dict) -> str:
    """The teacher per family: its greedy answer vs a sample at T = 1 (what token-level KD copies)."""
    t, fams = results["teacher"], rendering.families(results)
    chart = svg_charts.bar_chart(fams, {"greedy": [100 * t["acc_by_task"][f] for f in fams],
                                        "sampled, T = 1": [100 * t["sampled"]["acc_by_task"][f] for f in fams]},
                                 "The teacher per family: greedy vs sampled", "task family", "test accuracy %",
                                 top=100)
    return ("<h2>3. The teacher</h2><p>On the test prompts the teacher's greedy answers are right "
            f"{num(t['greedy_acc'], 'teacher/greedy_acc')} % of the time, its samples at T = 1 "
            f"{num(t['sampled']['acc'], 'teacher/sampled/acc')} %, its beam-search answers "
            f"{num(t['beam_acc'], 'teacher/beam_acc')} %. Token-level KD copies the distribution the samples come "
            "from; sequence-level KD copies the greedy answer.</p>"
            + figure(chart, "Test accuracy % per family: the teacher's greedy answer and a sample at T = 1."))


def student_rows(results: dict) -> list[list[str]]:
    fams, rows = rendering.families(results), []
    for m in results["methods"]:
        first = get(results, seed_paths(results, m)[0])
        rows.append([f"<b>{escape(m)}</b>", mean_sd(results, seed_paths(results, m, "greedy_acc"))]
                    + [mean_sd(results, seed_paths(results, m, "acc_by_task", f)) for f in fams]
                    + [mean_sd(results, seed_paths(results, m, "heldout_acc"))]
                    + ([mean_sd(results, seed_paths(results, m, k, long=True)) for k in ("greedy_acc", "heldout_acc")]
                       if results.get("plateau") else [])
                    + [mean_sd(results, seed_paths(results, m, "nll_gt"), 1, ".3f"),
                       mean_sd(results, seed_paths(results, m, "nll_teacher_data"), 1, ".3f"),
                       escape(rendering.stored_signal(first))])
    t = results["teacher"]
    rows.append(["teacher (reference)", num(t["greedy_acc"], "teacher/greedy_acc")]
                + [num(t["acc_by_task"][f], f"teacher/acc_by_task/{f}") for f in fams]
                + [num(t["heldout_acc"], "teacher/heldout_acc")] + (["—", "—"] if results.get("plateau") else [])
                + [num(t["nll_gt"], "teacher/nll_gt", 1, ".3f"),
                   num(t["nll_teacher_data"], "teacher/nll_teacher_data", 1, ".3f"), "—"])
    return rows


def students_section(results: dict) -> str:
    fams = rendering.families(results)
    x = (results.get("plateau") or {}).get("factor")
    header = (["method", "test %"] + [f"{f} %" for f in fams] + ["held-out %"]
              + ([f"{x}x steps: test %", f"{x}x steps: held-out %"] if x else [])
              + ["NLL ground truth", "NLL teacher answers", "stored signal"])
    return (f"<h2>4. The students</h2><p>Every student is the <code>{escape(results['student_preset'])}</code> "
            f"preset trained for {count(results, 'steps')} steps of {count(results, 'batch_size')} sequences (the same budget), "
            f"seeds {escape(str(results['seeds']))}; ± is the standard deviation over seeds. Test: prompts never "
            "trained on; held-out: a kind of case kept out of training.</p>"
            + table(header, student_rows(results), "students"))


def curves_section(results: dict) -> str:
    n = len(results["seeds"])
    chart = svg_charts.line_chart(rendering.curve_series(results), f"Learning curves, {n} seed(s), 95 % bands",
                                  "student step", "test accuracy %",
                                  hline=(100 * results["teacher"]["greedy_acc"], "teacher greedy"), top=100)
    return ("<h2>5. Learning curves</h2>"
            + figure(chart, "Test accuracy % along training: the mean over seeds with its 95 % t interval "
                     "(a band; none with one seed), and the teacher's greedy accuracy (dashed)."))


def family_section(results: dict) -> str:
    fams, means, errors = rendering.families(results), {}, {}
    for m in results["methods"]:
        ivs = [mean_interval([100 * v for v in rendering.per_seed_family(results, m, f)]) for f in fams]
        means[m] = [iv.mean for iv in ivs]
        if all(iv.n > 1 for iv in ivs):
            errors[m] = [(iv.lo, iv.hi) for iv in ivs]
    chart = svg_charts.bar_chart(fams, means, "Students per family", "task family", "test accuracy %", errors,
                                 top=100)
    return ("<h2>6. Per family</h2>" + figure(chart, "Test accuracy % per family, mean over seeds; whiskers: "
                                              "the 95 % t interval over seeds (with 2+ seeds)."))


def verdicts_section(results: dict) -> str:
    claims = rendering.claims(results)
    rows = [(c.text, c.diff.mean, c.diff.lo, c.diff.hi, mark(c)) for c in claims]
    chart = svg_charts.interval_chart(rows, "Every verdict: paired difference and its 95 % interval",
                                      "a − b, percentage points (0: no difference)")
    items = "".join(claim_html(c, f"main/{i}") for i, c in enumerate(claims))
    return ("<h2>7. Verdicts</h2><p>Each claim is tested on paired differences over seeds (or over prompts): the "
            "mean difference and its 95 % Student-t interval. ● holds, ◆ not separable (the interval holds 0), "
            "■ does not hold. On the quick profile an undecided verdict reads \"needs the default run\".</p>"
            + figure(chart, "Rows numbered as the sentences below.") + f'<ol class="verdicts">{items}</ol>')


def showcase_section(results: dict) -> str:
    """The same test prompts answered by the teacher and by each student (seed 0), right or wrong marked."""
    shown = results.get("showcase")
    seed = results["seeds"][0]
    answers = {"teacher": results["teacher"].get("showcase")}
    answers |= {m: results["students"][f"{m}-seed{seed}"]["metrics"].get("showcase") for m in results["methods"]}
    if not shown or any(a is None for a in answers.values()):
        return ("<h2>8. Six test prompts, side by side</h2><p>This results.json has no answers to show (written "
                "before minikd kept them, or from cached students): run <code>minikd</code> again.</p>")
    rows = []
    for i, r in enumerate(shown):
        cells = [f'<span class="{"ok" if a["correct"][i] else "bad"}">{CHECK if a["correct"][i] else CROSS}</span> '
                 f'<code>{escape(a["texts"][i])}</code>' for a in answers.values()]
        rows.append([f"<code>{escape(r['prompt'])}</code>", f"<code>{escape(r['completion'])}</code>"] + cells)
    return (f"<h2>8. {len(shown)} test prompts, side by side</h2><p>Greedy answers of the teacher and of each "
            f"student (seed {seed}); {CHECK} right, {CROSS} wrong (an answer cut off before its end token is "
            "wrong).</p>" + table(["prompt", "reference"] + list(answers), rows, "showcase"))


def word_kd_section(results: dict) -> str:
    sweep, chosen = results["word_kd_sweep"], results["word_kd"]
    names = [f"T={s['temperature']:g}, α={s['alpha']:g}" for s in sweep]
    chart = svg_charts.bar_chart(names, {"validation accuracy": [100 * s["val_acc"] for s in sweep]},
                                 "Word-level KD: T and α on the validation slice", "setting (T, α)",
                                 "validation accuracy %", top=100)
    rows = [[f"{s['temperature']:g}", f"{s['alpha']:g}", num(s["val_acc"], f"word_kd_sweep/{i}/val_acc"),
             "chosen" if {k: s[k] for k in ("temperature", "alpha")} == chosen else ""] for i, s in enumerate(sweep)]
    return ("<h2>9. Word-level KD's temperature and α</h2><p>Chosen on "
            f"{count(results, 'n_val')} held-back training prompts (seed 0), as every arm is tuned on its own "
            "validation slice (Hinton et al. 2015 for T; Kim & Rush 2016 for the mix α).</p>"
            + figure(chart, "Validation accuracy % per setting.") + table(["T", "α", "validation %", ""], rows))


def lesson_block(i: int, record: dict) -> str:
    """One lesson's saved results: how it ran, its table, its claims decided anew, their forest plot."""
    claims = [rendering.claim_from_record(c) for c in record["claims"]]
    took = f", {record['seconds'] / 60:.1f} min" if record.get("seconds") else ""
    parts = [f"<h3>{escape(record['title'])}</h3><p><code>{escape(record['command'])}</code>, seeds "
             f"{escape(str(record.get('seeds')))}{took}, device {escape(str(record.get('device')))}</p>"]
    if record.get("notes"):
        parts.append(f"<p>{escape(record['notes'])}</p>")
    if record.get("table"):
        rows = [[escape(str(c)) for c in row] for row in record["table"]["rows"]]
        parts.append(table(record["table"]["header"], rows, "lesson"))
    units = sorted({c.unit for c in claims if c.diff is not None})
    for unit in units:  # one plot per unit: intervals in nats and in points do not share an axis
        rows = [(c.text, c.diff.mean, c.diff.lo, c.diff.hi, mark(c)) for c in claims if c.diff and c.unit == unit]
        parts.append(figure(svg_charts.interval_chart(rows, f"{record['lesson']}: verdicts ({unit or 'difference'})",
                                                      f"a − b, {unit or 'difference'} (0: no difference)"),
                            "Rows in the order of the sentences below (facts, true or false, have no interval)."))
    items = "".join(claim_html(c, f"{record['lesson']}/{j}") for j, c in enumerate(claims))
    return "".join(parts) + f'<ol class="verdicts">{items}</ol>'


def lessons_section(lessons: list[dict]) -> str:
    if not lessons:
        return ("<h2>10. The lessons' results</h2><p>No lesson 11-16 has saved results for this profile yet: "
                "<code>python -m lessons.l11_what_seqkd_loses</code> (and l12-l16) save them, then "
                "<code>minikd report</code> shows them here.</p>")
    return "<h2>10. The lessons' results</h2>" + "".join(lesson_block(i, r) for i, r in enumerate(lessons))


def run_section(results: dict) -> str:
    """How the run was made: command, commit, seeds, device, ranks, wall times."""
    times = [[escape(k), num(v, f"times/{k}", 1, ".0f")] for k, v in results["times"].items()]
    ranks = [[escape(r), escape("; ".join(did))] for r, did in results.get("ranks", {}).items()]
    return ("<h2>11. How this run was made</h2><ul>"
            f"<li>command: <code>{escape(results.get('command', 'not recorded'))}</code></li>"
            f"<li>commit: <code>{escape(str(results.get('commit') or 'not recorded'))}</code></li>"
            f"<li>profile <code>{escape(results['profile'])}</code>, seeds {escape(str(results['seeds']))}, "
            f"teacher <code>{escape(results.get('teacher_preset', '?'))}</code> preset, "
            f"{count(results, 'teacher_steps')} steps</li>"
            f"<li>device <code>{escape(str(results['device']))}</code>, {count(results, 'world_size')} rank(s), "
            f"{count(results, 'threads')} thread(s) each</li></ul>"
            + table(["stage", "wall time (s)"], times, "times")
            + (table(["rank", "what it did"], ranks, "ranks") if ranks else ""))


CSS = """
:root { --ink: #111; --muted: #555; --ok: #009E73; --bad: #D55E00; }
body { font: 20px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--ink);
       max-width: 1100px; margin: 0 auto; padding: 1em; background: #fff; }
h1 { font-size: 2em; margin-bottom: 0.2em; } h2 { font-size: 1.5em; border-bottom: 3px solid #0072B2; margin-top: 1.6em; }
figure { margin: 1em 0; } svg.chart { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.85em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #eef4fa; }
.ok { color: var(--ok); font-weight: bold; } .bad { color: var(--bad); font-weight: bold; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.9em; }
.tokens { line-height: 2.2; }
.tok { border: 1px solid #999; padding: 0.1em 0.25em; margin: 0 1px; font-family: monospace; }
.tok.on { background: #E69F00; border-color: #8a5d00; font-weight: bold; }
ol.verdicts li { margin: 0.4em 0; }
@media print {
  @page { size: A4; margin: 14mm; }
  body { font-size: 10.5pt; max-width: none; padding: 0; }
  h2 { break-after: avoid; } figure, table, li { break-inside: avoid; }
}
"""


def build(results: dict, lessons: list[dict]) -> str:
    """The whole page as one string: the same inputs always give the same bytes (no build time in it)."""
    sections = [world_section(results), mask_section(), teacher_section(results), students_section(results),
                curves_section(results), family_section(results), verdicts_section(results),
                showcase_section(results), word_kd_section(results), lessons_section(lessons), run_section(results)]
    title = f"minikd lab report: profile {results['profile']}"
    body = "\n".join(f"<section>{s}</section>" for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body><h1>{escape(title)}</h1><p>Token-level KD (Hinton et al. 2015) against sequence-level KD "
            "(Kim & Rush 2016) on one small GPT teacher and its students. Every number here comes from "
            "results.json; every sentence about it is a verdict decided from those numbers.</p>\n"
            f"{body}\n</body></html>\n")


def write_page(results: dict, path: Path, lessons_dir: Path | None = None) -> Path:
    """Build the page and write it atomically (a reader never sees half a page)."""
    html = build(results, load_lessons(lessons_dir) if lessons_dir else [])
    atomic_write_text(path, html)
    return path


def main(argv=None) -> int:
    """`minikd report`: rebuild runs/<profile>/report.html from runs/<profile>/results.json (and lessons
    11-16's saved results) alone. Bad input is one line naming the file; nothing is written then."""
    p = argparse.ArgumentParser(prog="minikd report", description=main.__doc__)
    p.add_argument("--profile", default="default", help="whose results (default: default; `quick` for --quick)")
    p.add_argument("--out", default=None, help="where to write the page (default: runs/<profile>/report.html)")
    args = p.parse_args(argv)
    folder = runs_dir() / args.profile
    path = folder / "results.json"
    results = load(path)
    try:
        html = build(results, load_lessons(folder / "lessons"))
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as e:
        if isinstance(e, ReportError):
            raise
        raise ReportError(f"{path}: not a results.json this page can read ({type(e).__name__}: {e})") from None
    out = Path(args.out) if args.out else folder / "report.html"
    atomic_write_text(out, html)
    print(f"wrote {out} (open it in a browser; it needs no network)")
    return 0
