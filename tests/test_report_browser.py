"""The lab report page of a `--quick` run, opened in a real browser (headless Chromium, Debian's `chromium`
package; `.ci/run` installs it): no console error and no request at all besides the page itself, every
chart laid out and non-empty, as many verdicts as results.json decides, every number on the page equal to
results.json's (read back from what the browser shows), a screenshot and an A4 print.

Set MINIKD_SCREENSHOT=path to keep the screenshot (the README's, data/report_screenshot.png, comes from here)."""

import json
import os
import re
import shutil

import pytest

from minikd.machinery import cli, rendering, report_page
from browser import Browser, find_chromium
from test_report_page import resolve, tiny_results

CHROMIUM = find_chromium()

READ_PAGE = """(() => {
  const box = e => e.getBoundingClientRect();
  return {
    charts: [...document.querySelectorAll('svg.chart')].map(s => ({
      kind: s.dataset.kind, width: box(s).width, height: box(s).height,
      title: (s.querySelector('.chart-title') || {}).textContent || '',
      xlabel: (s.querySelector('.xlabel') || {}).textContent || '',
      marks: s.querySelectorAll('circle, rect.bar, g.interval').length,
      values: [...s.querySelectorAll('circle, rect.bar, g.interval')].map(e => [e.dataset.series || '',
        +e.dataset.v, e.dataset.lo === undefined ? null : +e.dataset.lo, e.dataset.hi === undefined ? null : +e.dataset.hi])})),
    nums: [...document.querySelectorAll('span.num')].map(e => ({
      attrs: Object.fromEntries([...e.attributes].map(a => [a.name, a.value])), text: e.innerText})),
    verdicts: document.querySelectorAll('li.verdict[data-claim^="main/"]').length,
    intervals: document.querySelectorAll('svg.chart[data-kind="intervals"]')[0]
      .querySelectorAll('g.interval').length,
    sections: [...document.querySelectorAll('h2')].map(h => h.innerText),
  };
})()"""


def read_in_browser(page):
    """What the browser saw of the page: the READ_PAGE record, its problems, a screenshot, an A4 print."""
    browser = Browser(CHROMIUM)
    try:
        browser.open(page)
        seen = browser.evaluate(READ_PAGE)
        problems = browser.problems(page.resolve().as_uri())
        return seen, problems, browser.screenshot(scale=0.5, height=2200), browser.print_a4()
    finally:
        browser.close()


def chart_numbers(results: dict) -> dict:
    """What the first three charts must draw, computed here from results.json: the teacher's bars (greedy, then
    sampled, per family), each method's mean curve, and every verdict's interval."""
    t, fams = results["teacher"], sorted(results["teacher"]["acc_by_task"])
    bars = [100 * t[k]["acc_by_task"][f] if k == "sampled" else 100 * t["acc_by_task"][f]
            for f in fams for k in ("greedy", "sampled")]
    curves = []
    for m in results["methods"]:
        runs = [results["students"][f"{m}-seed{s}"]["metrics"]["curve"] for s in results["seeds"]]
        curves += [sum(100 * r[i]["acc"] for r in runs) / len(runs) for i in range(len(runs[0]))]
    verdicts = [(c.diff.mean, c.diff.lo, c.diff.hi) for c in rendering.claims(results)]
    return {"bars": bars, "curves": curves, "verdicts": verdicts}


def close(a: list, b: list) -> bool:
    nan = lambda v: v is None or v != v  # a NaN (one seed: no interval) comes back from the browser as null
    return len(a) == len(b) and all(x == y or (nan(x) and nan(y)) or abs(x - y) < 1e-9 for x, y in zip(a, b))


def check_seen(seen: dict, problems: list[str], results: dict, lessons: dict | None = None) -> None:
    assert problems == []  # no console error, no failed request, nothing fetched
    assert len(seen["charts"]) >= 4 and {"lines", "bars", "intervals"} <= {c["kind"] for c in seen["charts"]}
    for c in seen["charts"]:
        assert c["width"] > 300 and c["height"] > 150 and c["marks"] > 0 and c["title"] and c["xlabel"], c
    assert seen["verdicts"] == seen["intervals"] == len(rendering.claims(results))
    drawn, expected = seen["charts"], chart_numbers(results)  # the numbers behind the marks, too
    assert close([v for _, v, _, _ in drawn[0]["values"]], expected["bars"])
    assert close([v for _, v, _, _ in drawn[1]["values"]], expected["curves"])
    assert close([x for row in drawn[3]["values"] for x in row[1:]], [x for row in expected["verdicts"] for x in row])
    assert len(seen["sections"]) == 11 and seen["sections"][0].startswith("1. The world")
    for n in seen["nums"]:  # every number as the browser shows it, against results.json
        expected = format(resolve(results, n["attrs"], lessons or {}), n["attrs"]["data-fmt"])
        assert n["text"] == expected, n
    assert len(seen["nums"]) > 50


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install "
                                    "-y chromium; .ci/run installs it when it runs as root)")


@needs_chromium
def test_the_browser_check_catches_a_fetch_and_a_wrong_number(tmp_path):
    """The check can fail: a page that loads an image from a server, and one whose number is off, are refused."""
    results = tiny_results()
    html = report_page.build(results, [])
    good, fetching, wrong = tmp_path / "good.html", tmp_path / "fetching.html", tmp_path / "wrong.html"
    good.write_text(html)
    fetching.write_text(html.replace("<h1>", '<img src="http://127.0.0.1:9/x.png" alt=""><h1>', 1))
    at = 'data-path="teacher/greedy_acc" data-scale="100" data-fmt=".1f">'
    wrong.write_text(html.replace(at + "75.0<", at + "76.0<", 1))
    check_seen(*read_in_browser(good)[:2], results)
    with pytest.raises(AssertionError, match="127.0.0.1:9"):
        check_seen(*read_in_browser(fetching)[:2], results)
    with pytest.raises(AssertionError, match="teacher/greedy_acc"):
        check_seen(*read_in_browser(wrong)[:2], results)


@pytest.mark.slow
@needs_chromium
def test_the_quick_runs_page_in_a_real_browser(runs_tmp, tmp_path):
    assert cli.main(["--quick"]) == 0  # the quick run (or its cache: test_showdown runs it too)
    page = runs_tmp / "quick" / "report.html"
    results = json.loads((runs_tmp / "quick" / "results.json").read_text())
    assert cli.main(["report", "--profile", "quick", "--out", str(tmp_path / "again.html")]) == 0
    assert (tmp_path / "again.html").read_bytes() == page.read_bytes()  # rebuilt from results.json alone
    seen, problems, shot, pdf = read_in_browser(page)
    lessons = {r["lesson"]: r for r in report_page.load_lessons(runs_tmp / "quick" / "lessons")}  # other tests' lessons
    check_seen(seen, problems, results, lessons)
    assert "answers to show" not in page.read_text()  # the six test prompts are there, side by side
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000  # drawn, not blank
    assert pdf[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2  # prints, on A4 pages
    if os.environ.get("MINIKD_SCREENSHOT"):
        (tmp_path / "shot.png").write_bytes(shot)
        shutil.copy(tmp_path / "shot.png", os.environ["MINIKD_SCREENSHOT"])
