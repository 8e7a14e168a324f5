"""Showing results: markdown tables, a loss curve drawn in the terminal, and PNG charts when the
optional `plot` extra (matplotlib) is installed. Everything here formats numbers it is given; it
computes none of them.
"""

from __future__ import annotations

from pathlib import Path



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


MARKERS = "abcdefghijklmnopqrstuvwxyz"


def ascii_chart(series: dict[str, tuple[list, list]], width: int = 64, height: int = 14, xlabel: str = "step",
                ylabel: str = "", hline: tuple[float, str] | None = None) -> str:
    """Several lines in one character chart: series name -> (xs, ys), one letter per series (legend
    below); `hline` = (y, label) draws a dashed reference line (e.g. the teacher). Where lines cross the
    later series' letter wins."""
    xs_all = [x for xs, _ in series.values() for x in xs]
    ys_all = [y for _, ys in series.values() for y in ys] + ([hline[0]] if hline else [])
    if not xs_all:
        return "(no values)"
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = min(ys_all), max(ys_all)
    grid = [[" "] * width for _ in range(height)]

    def cell(x, y):
        col = round((x - x0) / ((x1 - x0) or 1) * (width - 1))
        row = height - 1 - round((y - y0) / ((y1 - y0) or 1) * (height - 1))
        return row, col

    if hline:
        row, _ = cell(x0, hline[0])
        grid[row] = ["-" if c == " " else c for c in grid[row]]
    for letter, (xs, ys) in zip(MARKERS, series.values()):
        points = [cell(x, y) for x, y in zip(xs, ys)]
        for (r0, c0), (r1, c1) in zip(points, points[1:]):  # dots between measured points
            for col in range(c0 + 1, c1):
                row = round(r0 + (r1 - r0) * (col - c0) / (c1 - c0))
                if grid[row][col] in " -":
                    grid[row][col] = "."
        for row, col in points:
            grid[row][col] = letter
    lines = [f"{y1 - i * (y1 - y0) / (height - 1):7.1f} |" + "".join(r) for i, r in enumerate(grid)]
    lines.append(" " * 8 + "+" + "-" * width)
    lines.append(" " * 9 + f"{x0:<10g}{xlabel:^{width - 20}}{x1:>10g}")
    legend = [f"{letter} = {name}" for letter, name in zip(MARKERS, series)]
    if hline:
        legend.append(f"--- = {hline[1]} ({hline[0]:.1f})")
    lines.append(" " * 9 + (ylabel + ": " if ylabel else "") + ", ".join(legend))
    return "\n".join(lines)


def ascii_bars(rows: dict[str, float], width: int = 40, unit: str = "") -> str:
    """Horizontal bars, one per row (name -> value >= 0), scaled to the largest value."""
    top = max(rows.values(), default=0) or 1
    pad = max((len(name) for name in rows), default=0)
    return "\n".join(f"{name:>{pad}s} |{'#' * round(width * v / top):<{width}s} {v:g}{unit}"
                     for name, v in rows.items())


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


def save_band_plot(path, series: dict[str, tuple[list, list, list, list]], xlabel: str, ylabel: str, title: str,
                   hline: tuple[float, str] | None = None) -> Path | None:
    """series: name -> (xs, mean, lower, upper): a line per series with a shaded band. None without matplotlib."""
    if not have_matplotlib():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (xs, mean, lo, hi) in series.items():
        line, = ax.plot(xs, mean, label=name, marker=".")
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
    if hline:
        ax.axhline(hline[0], color="black", linestyle="--", linewidth=1, label=hline[1])
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
