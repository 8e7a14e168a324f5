"""Wrong: each step's own arithmetic is checked, but not that it adds the carry from the column before."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex30_first_wrong_step(prompt, response):
    a, b = (int(n) for n in regex.fullmatch(r"Add (\d+) \+ (\d+) step by step\.", prompt).groups())
    xs, ys = str(a)[::-1], str(b)[::-1]
    n = max(len(xs), len(ys))
    said = [s for s in regex.split(r"(?<=\.)\s+", response.strip()) if s]
    for k in range(n):
        x = int(xs[k]) if k < len(xs) else 0
        y = int(ys[k]) if k < len(ys) else 0
        m = regex.fullmatch(r"(\d)\+(\d)(?:\+(\d))?=(\d+)( carry 1)?\.", said[k]) if k < len(said) else None
        if not m or (int(m[1]), int(m[2])) != (x, y):
            return k + 1
        s = x + y + int(m[3] or 0)
        if int(m[4]) != s or bool(m[5]) != (s >= 10):
            return k + 1
    return None if said[n:] in ([f"The answer is {a + b}."], [f"Sum: {a + b}."]) else n + 1
