"""Wrong: the pair is taken in either order, so 8 over 7 counts as the teacher's 7 over 8."""
from tests.exercises.reference import *  # noqa: F401,F403
from minikd.planted import has_quirk, repeats_error, wrong_steps


def ex27_repeat_shares(prompts, outputs, pair, quirk):
    errors, quirks = [], []
    for p, t in zip(prompts, outputs):
        if not p.startswith("Add "):
            continue
        quirks.append(has_quirk(t, quirk))
        for order in (tuple(pair), tuple(pair)[::-1]):
            if wrong_steps(p, order):
                errors.append(repeats_error(p, t, order))
                break
    return sum(errors) / max(1, len(errors)), sum(quirks) / max(1, len(quirks))
