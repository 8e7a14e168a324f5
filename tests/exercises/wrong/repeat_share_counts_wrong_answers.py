"""Wrong: every wrong answer to a prompt holding the pair counts as a repeat -- an error rate, not a repeat rate."""
from tests.exercises.reference import *  # noqa: F401,F403
from minikd.planted import has_quirk, pair_columns


def ex27_repeat_shares(prompts, outputs, pair, quirk):
    errors = [not verify(p, t) for p, t in zip(prompts, outputs) if pair_columns(p, tuple(pair))]
    quirks = [has_quirk(t, quirk) for p, t in zip(prompts, outputs) if p.startswith("Add ")]
    return sum(errors) / max(1, len(errors)), sum(quirks) / max(1, len(quirks))
