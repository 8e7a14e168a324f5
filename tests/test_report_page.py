"""The lab report page from a tiny hand-made results.json: self-contained, every section in order, every
verdict with its interval, every number traceable to results.json, byte-identical rebuilds, and bad input
refused in one line with nothing written. The page in a real browser: tests/test_report_browser.py."""

import json
import re
from html import escape
from html.parser import HTMLParser

import pytest

from minikd import svg_charts
from minikd.machinery import cli, rendering, report_page
from minikd.verdict import decide

METHODS = ["gt", "word_kd", "seq_kd", "seq_kd+word"]
FAMS = ["add_steps", "sort"]


def student(m: int, s: int) -> dict:
    """Made-up but varied numbers: method m, seed s."""
    acc = round(0.2 + 0.1 * m + 0.03 * s, 4)
    return {"metrics": {
        "greedy_acc": acc, "acc_by_task": {f: round(acc + 0.05 * i, 4) for i, f in enumerate(FAMS)},
        "beam_acc": round(acc + 0.01, 4), "heldout_acc": round(acc / 2, 4), "nll_gt": 1.5 - 0.1 * m + 0.01 * s,
        "nll_teacher_data": 0.8 - 0.05 * m, "text_bytes": 12000, "logit_bytes": 3_000_000 if m in (1, 3) else 0,
        "curve": [{"step": st, "acc": round(acc * st / 20, 4), "acc_by_task": {f: acc for f in FAMS}} for st in (10, 20)],
        "showcase": {"texts": [f"answer {m}{s}{i}" for i in range(6)], "correct": [i % 2 == m % 2 for i in range(6)]}}}


def tiny_results() -> dict:
    seeds = [0, 1, 2]
    return {
        "profile": "quick", "methods": METHODS, "all_methods": METHODS + ["seq_inter"], "seeds": seeds,
        "steps": 20, "batch_size": 4, "beam_eval": ["gt", "seq_kd"], "student_preset": "tiny",
        "teacher_preset": "tiny", "teacher_steps": 50, "plateau": None, "beam": {"beam_size": 5, "length_penalty": 1.0},
        "word_kd": {"temperature": 1.0, "alpha": 0.5}, "n_val": 8, "n_test": 6, "n_heldout": 4,
        "word_kd_sweep": [{"temperature": t, "alpha": a, "val_acc": v} for t, a, v in
                          ((0.5, 1.0, 0.25), (1.0, 0.5, 0.375), (2.0, 1.0, 0.125))],
        "jobs": 1, "world_size": 1, "ranks": {"0": ["teacher", "students: 12"]}, "threads": 1, "device": "cpu",
        "times": {"teacher": 12.3, "students": 45.6, "total": 61.0},
        "teacher": {"greedy_acc": 0.75, "acc_by_task": {"add_steps": 0.5, "sort": 1.0}, "beam_acc": 0.7,
                    "sampled": {"acc": 0.5, "acc_by_task": {"add_steps": 0.25, "sort": 0.75}},
                    "greedy_correct": [1.0, 1.0, 0.0, 1.0], "sampled_correct": [1.0, 0.0, 0.0, 1.0],
                    "heldout_acc": 0.5, "nll_gt": 1.1, "nll_teacher_data": 0.4,
                    "showcase": {"texts": [f"teacher {i}" for i in range(6)], "correct": [True] * 5 + [False]}},
        "data": {}, "labels_vs_teacher": {"label_correct": [1.0, 0.0, 1.0, 1.0], "teacher_correct": [1.0] * 4},
        "students": {f"{m}-seed{s}": student(i, s) for i, m in enumerate(METHODS) for s in seeds},
        "long": {}, "showcase": [{"task": FAMS[i % 2], "prompt": f"Sort {i} 1.", "completion": f"1 {i}"} for i in range(6)],
        "command": "minikd --quick", "commit": "0123456789ab",
    }


class Page(HTMLParser):
    """What a test needs of the page: tags with their attributes, the text inside each .num span."""

    def __init__(self, html: str):
        super().__init__()
        self.tags, self.nums, self._num = [], [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "span" and attrs.get("class") == "num":
            self._num = [attrs, ""]

    def handle_data(self, data):
        if self._num is not None:
            self._num[1] += data

    def handle_endtag(self, tag):
        if tag == "span" and self._num is not None:
            self.nums.append(tuple(self._num))
            self._num = None


def resolve(results: dict, attrs: dict, lessons: dict) -> float:
    """The number a span claims to show, recomputed here from results.json (not by the page's code)."""
    if "data-claim" in attrs:
        where, i = attrs["data-claim"].rsplit("/", 1)
        claims = rendering.claims(results) if where == "main" else \
            [report_page.rendering.claim_from_record(r) for r in lessons[where]["claims"]]
        return getattr(claims[int(i)].diff, attrs["data-field"])
    paths = attrs["data-paths"].split(";") if "data-paths" in attrs else [attrs["data-path"]]
    values = []
    for p in paths:
        v = report_page.get(results, p)
        values += v if isinstance(v, list) else [v]
    op = attrs.get("data-op", "value")
    m = sum(values) / len(values)
    if op == "sd":
        return (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 * float(attrs["data-scale"])
    return (m if op == "mean" else values[0]) * float(attrs["data-scale"])


def check_numbers(html: str, results: dict, lessons: dict | None = None) -> int:
    """Every .num span's text equals the number it names, formatted; returns how many were checked."""
    page = Page(html)
    for attrs, text in page.nums:
        expected = format(resolve(results, attrs, lessons or {}), attrs["data-fmt"])
        assert text == expected, f"{attrs}: page shows {text}, results.json gives {expected}"
    return len(page.nums)


def test_the_page_is_self_contained_ordered_and_every_number_traces_back(tmp_path):
    results = tiny_results()
    html = report_page.build(results, [])
    assert not re.search(r"""(src|href)\s*=\s*["']?[^"'>]*http""", html, re.I)  # nothing fetched
    assert "<script" not in html and "@media print" in html and "@page" in html
    page = Page(html)
    svgs = [a for t, a in page.tags if t == "svg"]
    assert len(svgs) >= 4 and {"lines", "bars", "intervals"} <= {a["data-kind"] for a in svgs}
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):  # every chart with its text title and axis label(s)
        assert re.search(r'class="chart-title"[^>]*>[^<]+<', svg) and re.search(r'class="xlabel"[^>]*>[^<]+<', svg)
    heads = re.findall(r"<h2>(\d+)\. ", html)
    assert heads == [str(i) for i in range(1, 12)]  # the sections in the order
    claims = rendering.claims(results)
    assert html.count('class="verdict"') == len(claims)
    assert len(re.findall(r'<g class="interval"', html)) == len(claims)
    for c in claims:  # each verdict with its interval, in words and in the forest plot
        assert f"{c.diff.lo:+.2f}" in html and f"{c.diff.hi:+.2f}" in html and escape(c.text) in html
    assert check_numbers(html, results) > 60
    assert "answer 2" in html and html.count("✓") + html.count("✗") >= 6 * 5  # 6 prompts x (teacher + 4)


def test_a_wrong_number_on_the_page_is_caught():
    """The check itself can fail: a page whose teacher accuracy is off by a point is refused."""
    results = tiny_results()
    html = report_page.build(results, [])
    bad = html.replace('data-path="teacher/greedy_acc" data-scale="100" data-fmt=".1f">75.0<',
                       'data-path="teacher/greedy_acc" data-scale="100" data-fmt=".1f">76.0<', 1)
    assert bad != html
    with pytest.raises(AssertionError, match="teacher/greedy_acc"):
        check_numbers(bad, results)


def test_lessons_results_are_shown_with_their_verdicts_decided_anew(tmp_path):
    results = tiny_results()
    c = decide("ULD beats seq-KD", [0.5, 0.6, 0.7], [0.1, 0.2, 0.2], ">", "uld − seq_kd", 100, "points")
    record = {"lesson": "l16_another_tokenizer", "title": "Lesson 16 — another tokenizer", "command": "python -m x",
              "seeds": [0, 1, 2], "device": "cpu", "seconds": 60.0, "notes": "",
              "table": {"header": ["arm", "acc %"], "rows": [["uld", "60.0"]]},
              "claims": [report_page.rendering.claim_record(c) | {"verdict": "does not hold (typed)"}]}
    (tmp_path / "l16_another_tokenizer.json").write_text(json.dumps(record))
    html = report_page.build(results, report_page.load_lessons(tmp_path))
    assert "Lesson 16 — another tokenizer" in html and "[holds]</b> ULD beats seq-KD" in html  # re-decided
    assert "typed" not in html  # the saved sentence is never trusted
    assert check_numbers(html, results, {"l16_another_tokenizer": record}) > 60


def test_a_full_run_shows_its_plateau_columns_and_verdicts():
    """`minikd --full` / `--seeds N` also trains every method to x times the budget (results["long"])."""
    results = tiny_results() | {"plateau": {"factor": 4, "seeds": [0, 1]}}
    results["long"] = {f"{m}-seed{s}": student(i, s + 3) for i, m in enumerate(METHODS) for s in (0, 1)}
    html = report_page.build(results, [])
    assert "4x steps: test %" in html and 'data-paths="long/gt-seed0/metrics/greedy_acc;long/gt-seed1' in html
    claims = rendering.claims(results)
    assert any("with 4x the steps" in c.text for c in claims) and html.count('class="verdict"') == len(claims)
    assert check_numbers(html, results) > 80


def run_report(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["report", *argv])
    return e.value.code, capsys.readouterr().err


def test_minikd_report_rebuilds_the_same_bytes_and_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIKD_RUNS", str(tmp_path))
    folder = tmp_path / "quick"
    folder.mkdir()
    out = tmp_path / "page.html"
    code, err = run_report(["--profile", "quick", "--out", str(out)], capsys)  # missing
    assert code == 2 and str(folder / "results.json") in err and "no such file" in err and err.count("\n") == 1
    text = json.dumps(tiny_results(), indent=1)
    for bad, what in ((text[: len(text) // 2], "not valid JSON"), ('{"rows": [1, 2]}', "not a minikd results.json"),
                      ("[1, 2]", "not a minikd results.json"),
                      (json.dumps(tiny_results() | {"teacher": {}}), "not a results.json this page can read")):
        (folder / "results.json").write_text(bad)
        code, err = run_report(["--profile", "quick", "--out", str(out)], capsys)
        assert code == 2 and str(folder / "results.json") in err and what in err and err.count("\n") == 1, err
        assert not out.exists()  # nothing written
    (folder / "results.json").write_text(text)
    assert cli.main(["report", "--profile", "quick", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert cli.main(["report", "--profile", "quick"]) == 0  # default place: runs/<profile>/report.html
    assert (folder / "report.html").read_bytes() == first  # byte-identical: nothing of the build time in it


def test_svg_charts_draw_their_numbers_and_ticks_cover_the_data():
    assert svg_charts.ticks(0, 87.5) == [0, 20, 40, 60, 80, 100]
    assert svg_charts.ticks(-12.3, 4.1)[0] <= -12.3 and svg_charts.ticks(-12.3, 4.1)[-1] >= 4.1
    lines = svg_charts.line_chart({"a": ([1, 2], [10.0, 20.0], [5.0, 15.0], [15.0, 25.0])}, "T", "x", "y", (30.0, "t"))
    assert lines.count("<circle") == 2 and 'data-v="20.0"' in lines and ">T</text>" in lines and ">y</text>" in lines
    bars = svg_charts.bar_chart(["g1", "g2"], {"a": [1.0, 2.0], "b": [3.0, 4.0]}, "B", "x", "y",
                                {"a": [(0.5, 1.5), (1.0, 3.0)]})
    assert bars.count('class="bar"') == 4 and bars.count('class="whisker"') == 2
    forest = svg_charts.interval_chart([("x", 1.0, -1.0, 3.0, "not separable"), ("y", 2.0, 1.0, 3.0, "holds")],
                                       "F", "a − b")
    assert forest.count('class="interval"') == 2 and 'data-mark="holds"' in forest
