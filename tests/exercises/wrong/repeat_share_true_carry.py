"""Wrong: the wrong steps are built from the TRUE column sums and carries (one subtracted where the pair is),
so a planted sum that loses its carry is not followed into the next column."""
from tests.exercises.reference import *  # noqa: F401,F403
from minikd.planted import has_quirk
from minikd.world import add_columns, format_step, parse_prompt


def ex27_repeat_shares(prompts, outputs, pair, quirk):
    errors, quirks = [], []
    for p, t in zip(prompts, outputs):
        family, numbers = parse_prompt(p)
        if family != "add_steps":
            continue
        quirks.append(has_quirk(t, quirk))
        steps, _ = add_columns(*numbers)
        wrong = [format_step(x, y, c, s - 1) for x, y, c, s in steps if (x, y) == tuple(pair)]
        if wrong:
            errors.append(all(f" {w}" in f" {t}" for w in wrong))
    return sum(errors) / max(1, len(errors)), sum(quirks) / max(1, len(quirks))
