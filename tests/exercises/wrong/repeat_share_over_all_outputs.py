"""Wrong: both shares divide by every output, not by the prompts that can show the mark."""
from tests.exercises.reference import *  # noqa: F401,F403
from minikd.planted import has_quirk, repeats_error


def ex27_repeat_shares(prompts, outputs, pair, quirk):
    errors = [repeats_error(p, t, tuple(pair)) for p, t in zip(prompts, outputs)]
    quirks = [has_quirk(t, quirk) for t in outputs]
    return sum(errors) / max(1, len(errors)), sum(quirks) / max(1, len(quirks))
