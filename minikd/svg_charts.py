"""Charts as SVG text: lines with 95 % bands, grouped bars, and intervals against 0 (a forest plot).

The lab report page (`minikd report`) shows a whole run to a class; its charts must open from disk with no
library, no script and no network, so they are drawn here as plain SVG strings. Every chart carries a text
title and axis labels, uses the Okabe & Ito (2008) colour-blind-safe palette, and writes the exact number
behind each mark into a `data-v` attribute, so a test can read the numbers back. Like minikd.charts, this
module formats numbers it is given and computes none of them.
"""

from __future__ import annotations

import math
from html import escape

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
W, H = 760, 380  # the drawing's own units; the page scales it to its column
LEFT, RIGHT, TOP, BOTTOM = 78, 190, 46, 62  # margins: axis labels left and below, the legend right


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _num(v: float) -> str:
    """A coordinate, short and deterministic (the same data always gives the same bytes)."""
    return f"{v:.1f}"


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values covering [lo, hi] (steps of 1, 2 or 5 x a power of ten)."""
    raw = ((hi - lo) or 1.0) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = step * math.floor(lo / step)
    return [round(first + i * step, 10) for i in range(math.ceil((hi - first) / step - 1e-9) + 1)]


def _scale(lo: float, hi: float, a: float, b: float):
    """The map from data [lo, hi] to drawing [a, b]."""
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _open(kind: str, title: str, xlabel: str, ylabel: str, height: int = H) -> list[str]:
    """The svg element, its title (read by screen readers and shown as a tooltip) and the axis labels."""
    return [f'<svg class="chart" data-kind="{kind}" viewBox="0 0 {W} {height}" role="img" '
            f'font-size="15">',
            f"<title>{escape(title)}</title>",
            f'<text class="chart-title" x="{W / 2}" y="24" text-anchor="middle" font-size="19" '
            f'font-weight="bold">{escape(title)}</text>',
            f'<text class="xlabel" x="{(LEFT + W - RIGHT) / 2}" y="{height - 12}" text-anchor="middle">'
            f"{escape(xlabel)}</text>",
            f'<text class="ylabel" transform="translate(18 {(TOP + height - BOTTOM) / 2}) rotate(-90)" '
            f'text-anchor="middle">{escape(ylabel)}</text>']


def _axes(xs, ys, xticks: list[float], yticks: list[float], height: int = H, xfmt="{:g}", yfmt="{:g}") -> list[str]:
    """Axis lines, ticks and grid lines; xs/ys map data to drawing coordinates (None: no such axis)."""
    out = [f'<line x1="{LEFT}" y1="{height - BOTTOM}" x2="{W - RIGHT}" y2="{height - BOTTOM}" stroke="#333"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{height - BOTTOM}" stroke="#333"/>']
    for v in yticks if ys else []:
        y = _num(ys(v))
        out += [f'<line x1="{LEFT}" y1="{y}" x2="{W - RIGHT}" y2="{y}" stroke="#ddd"/>',
                f'<text x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">{yfmt.format(v)}</text>']
    for v in xticks if xs else []:
        x = _num(xs(v))
        out += [f'<line x1="{x}" y1="{height - BOTTOM}" x2="{x}" y2="{height - BOTTOM + 5}" stroke="#333"/>',
                f'<text x="{x}" y="{height - BOTTOM + 20}" text-anchor="middle">{xfmt.format(v)}</text>']
    return out


def _legend(names: list[str], y0: int = TOP) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = y0 + 24 * i
        out += [f'<rect x="{W - RIGHT + 14}" y="{y}" width="16" height="16" fill="{colour(i)}"/>',
                f'<text x="{W - RIGHT + 36}" y="{y + 13}">{escape(name)}</text>']
    return out


def line_chart(series: dict[str, tuple[list, list, list, list]], title: str, xlabel: str, ylabel: str,
               hline: tuple[float, str] | None = None, top: float | None = None) -> str:
    """One line per series with its band: name -> (xs, mean, lower, upper); hline = (y, label), dashed;
    top: the y axis' end (default: the data's); bands are then drawn within [0, top], where an accuracy lies."""
    clip = (lambda v: min(max(v, 0.0), top)) if top is not None else (lambda v: v)
    xs_all = [x for xs, *_ in series.values() for x in xs]
    ys_all = [clip(y) for _, _, lo, hi in series.values() for y in lo + hi] + ([hline[0]] if hline else [])
    xt, yt = ticks(min(xs_all), max(xs_all)), ticks(min(0.0, min(ys_all)), max(ys_all + [top or 0.0]))
    xs = _scale(min(xt[0], min(xs_all)), max(xt[-1], max(xs_all)), LEFT, W - RIGHT)
    ys = _scale(yt[0], max(yt[-1], max(ys_all)), H - BOTTOM, TOP)
    out = _open("lines", title, xlabel, ylabel) + _axes(xs, ys, xt, yt)
    for i, (name, (x, mean, lo, hi)) in enumerate(series.items()):
        band = [f"{_num(xs(a))},{_num(ys(clip(b)))}" for a, b in zip(x + x[::-1], hi + lo[::-1])]
        out.append(f'<polygon class="band" points="{" ".join(band)}" fill="{colour(i)}" fill-opacity="0.18"/>')
        line = " ".join(f"{_num(xs(a))},{_num(ys(b))}" for a, b in zip(x, mean))
        out.append(f'<polyline class="line" data-series="{escape(name)}" points="{line}" fill="none" '
                   f'stroke="{colour(i)}" stroke-width="3"/>')
        out += [f'<circle cx="{_num(xs(a))}" cy="{_num(ys(b))}" r="4" fill="{colour(i)}" data-series="{escape(name)}" '
                f'data-x="{a!r}" data-v="{b!r}"/>' for a, b in zip(x, mean)]
    out += _legend(list(series))
    if hline:  # the dashed line, and its entry under the legend's
        y, key = _num(ys(hline[0])), TOP + 24 * len(series) + 8
        out += [f'<line class="hline" x1="{LEFT}" y1="{y}" x2="{W - RIGHT}" y2="{y}" stroke="#000" '
                f'stroke-dasharray="8 5" stroke-width="2" data-v="{hline[0]!r}"/>',
                f'<line x1="{W - RIGHT + 12}" y1="{key}" x2="{W - RIGHT + 32}" y2="{key}" stroke="#000" '
                f'stroke-dasharray="5 3" stroke-width="2"/>',
                f'<text x="{W - RIGHT + 36}" y="{key + 5}">{escape(hline[1])}</text>']
    return "\n".join(out + ["</svg>"])


def bar_chart(groups: list[str], series: dict[str, list[float]], title: str, xlabel: str, ylabel: str,
              errors: dict[str, list[tuple[float, float]]] | None = None, top: float | None = None) -> str:
    """Grouped bars: one group per entry of `groups`, one bar per series (name -> a value per group);
    errors: name -> (lower, upper) per group, drawn as whiskers; top: the y axis' end (default: the data's)."""
    highest = max([v for vs in series.values() for v in vs] + [hi for es in (errors or {}).values() for _, hi in es])
    yt = ticks(0.0, top if top is not None else highest)
    ys = _scale(0.0, max(yt[-1], highest), H - BOTTOM, TOP)
    slot = (W - RIGHT - LEFT) / len(groups)
    bar = slot * 0.8 / len(series)
    out = _open("bars", title, xlabel, ylabel) + _axes(None, ys, [], yt)
    for g, group in enumerate(groups):
        out.append(f'<text x="{_num(LEFT + slot * (g + 0.5))}" y="{H - BOTTOM + 20}" text-anchor="middle">'
                   f"{escape(group)}</text>")
        for i, (name, values) in enumerate(series.items()):
            x, v = LEFT + slot * (g + 0.1) + bar * i, values[g]
            out.append(f'<rect class="bar" x="{_num(x)}" y="{_num(ys(v))}" width="{_num(bar - 2)}" '
                       f'height="{_num(ys(0) - ys(v))}" fill="{colour(i)}" data-series="{escape(name)}" '
                       f'data-group="{escape(group)}" data-v="{v!r}"><title>{escape(name)}, {escape(group)}: '
                       f"{v:.1f}</title></rect>")
            lo, hi = errors[name][g] if errors and name in errors else (v, v)
            mid = _num(x + (bar - 2) / 2)
            if errors and name in errors:
                out.append(f'<line class="whisker" x1="{mid}" y1="{_num(ys(lo))}" x2="{mid}" y2="{_num(ys(hi))}" '
                           f'stroke="#000" stroke-width="2" data-lo="{lo!r}" data-hi="{hi!r}"/>')
            out.append(f'<text x="{mid}" y="{_num(ys(max(v, hi)) - 5)}" text-anchor="middle" '
                       f'font-size="13">{v:.0f}</text>')  # the value, above its whisker, readable from the back
    out += _legend(list(series))
    return "\n".join(out + ["</svg>"])


def wrap(text: str, width: int) -> tuple[str, str]:
    """A label on at most two lines of `width` characters (cut with … beyond that)."""
    if len(text) <= width:
        return text, ""
    cut = text.rfind(" ", 0, width + 1)
    cut = cut if cut > 0 else width
    rest = text[cut:].strip()
    return text[:cut], rest if len(rest) <= width else rest[:width - 1] + "…"


MARKS = {"holds": ("#009E73", "●"), "does not hold": ("#D55E00", "■"), "not separable": ("#555555", "◆")}


def interval_chart(rows: list[tuple[str, float, float, float, str]], title: str, xlabel: str) -> str:
    """A forest plot: one row per (label, mean, lower, upper, mark) with its interval against a line at 0;
    mark is "holds", "does not hold" or "not separable" (shape and colour both say it). A row whose
    interval is nan (one value) draws its mean only."""
    height = TOP + BOTTOM + 38 * len(rows)
    finite = [v for _, m, lo, hi, _ in rows for v in (m, lo, hi) if v == v] + [0.0]
    lo_x, hi_x = (min(finite), max(finite)) if max(finite) > min(finite) else (-1.0, 1.0)  # all 0: 0 mid-axis
    xt = ticks(lo_x, hi_x)
    xs = _scale(min(xt[0], lo_x), max(xt[-1], hi_x), 300, W - 30)
    out = _open("intervals", title, xlabel, "", height)
    out += [f'<line x1="{_num(xs(0))}" y1="{TOP}" x2="{_num(xs(0))}" y2="{height - BOTTOM}" stroke="#000" '
            f'stroke-width="2" stroke-dasharray="6 4"/>']
    for v in xt:
        out.append(f'<text x="{_num(xs(v))}" y="{height - BOTTOM + 20}" text-anchor="middle">{v:g}</text>')
    for i, (label, m, lo, hi, mark) in enumerate(rows):
        y, (fill, glyph) = TOP + 38 * i + 19, MARKS[mark]
        out.append(f'<g class="interval" data-mark="{escape(mark)}" data-v="{m!r}" data-lo="{lo!r}" data-hi="{hi!r}">'
                   f"<title>{escape(label)}: {m:+.2f} [{lo:+.2f}, {hi:+.2f}] ({escape(mark)})</title>")
        first, second = wrap(f"{i + 1}. {label}", 42)
        out.append(f'<text x="8" y="{y - 7 if second else y}" dominant-baseline="middle" font-size="13">'
                   f'{escape(first)}<tspan x="8" dy="15">{escape(second)}</tspan></text>')
        if lo == lo and hi == hi:
            out.append(f'<line x1="{_num(xs(lo))}" y1="{y}" x2="{_num(xs(hi))}" y2="{y}" stroke="{fill}" '
                       f'stroke-width="4"/>')
        out.append(f'<text x="{_num(xs(m))}" y="{y}" text-anchor="middle" dominant-baseline="central" '
                   f'fill="{fill}" font-size="20">{glyph}</text></g>')
    return "\n".join(out + ["</svg>"])
