"""Wrong: a worked solution counts as right when its final answer is right, whatever its steps say."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex30_first_wrong_step(prompt, response):
    a, b = (int(n) for n in regex.fullmatch(r"Add (\d+) \+ (\d+) step by step\.", prompt).groups())
    n = max(len(str(a)), len(str(b)))
    return None if verify(prompt, response) else n + 1
