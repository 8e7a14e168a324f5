"""Showing results: markdown tables, a loss curve drawn in the terminal, and PNG charts when the
optional `plot` extra (matplotlib) is installed. Everything here formats numbers it is given; it
computes none of them.
"""

from __future__ import annotations

import math
from pathlib import Path

from minikd.common import atomic_write_text


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table; numbers are expected pre-formatted as strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ascii_curve(values: list[float], width: int = 60, height: int = 10, label: str = "loss") -> str:
    """A small line chart in characters, for a learner who runs lessons in a terminal."""
    if not values:
        return "(no values)"
    if len(values) > width:  # average neighbouring points down to `width` columns
        bounds = [round(i * len(values) / width) for i in range(width + 1)]
        values = [sum(values[a:b]) / (b - a) for a, b in zip(bounds, bounds[1:])]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    rows = [[" "] * len(values) for _ in range(height)]
    for x, v in enumerate(values):
        y = round((v - lo) / span * (height - 1))
        rows[height - 1 - y][x] = "*"
    out = []
    for i, row in enumerate(rows):
        tick = hi - i * span / (height - 1)
        out.append(f"{tick:8.3f} |" + "".join(row))
    out.append(" " * 9 + "+" + "-" * len(values))
    out.append(" " * 10 + f"{label} over training (left: first step, right: last)")
    return "\n".join(out)


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def _pyplot():
    """matplotlib's pyplot on the file-only backend (no window, works on a headless machine)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, ax, path) -> Path:
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return Path(path)


def save_line_plot(path, series: dict[str, tuple[list, list]], xlabel: str, ylabel: str, title: str) -> Path | None:
    """series: name -> (xs, ys). Returns the path written, or None without matplotlib."""
    if not have_matplotlib():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return _save(fig, ax, path)


def save_bar_chart(path, labels: list[str], groups: dict[str, list[float]], errors: dict[str, list[float]] | None,
                   ylabel: str, title: str) -> Path | None:
    """Grouped bars: one group per label, one bar per key of `groups` (with optional error bars)."""
    if not have_matplotlib():
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(groups)
    width = 0.8 / max(1, n)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(labels)), 3.8))
    for i, (name, values) in enumerate(groups.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(labels))]
        yerr = errors.get(name) if errors else None
        ax.bar(xs, values, width, label=name, yerr=yerr, capsize=3)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right")
    ax.set(ylabel=ylabel, title=title)
    return _save(fig, ax, path)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def write_text(path, text: str) -> Path:
    atomic_write_text(path, text)
    return Path(path)
