"""Wrong: the filter keeps duplicate (prompt, completion) pairs."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex22_filter_records(records, verify_fn):
    kept, dropped = [], Counter()
    for r in records:
        if not r["ended"]:
            dropped["truncated"] += 1
        elif not verify_fn(r["prompt"], r["completion"]):
            dropped["incorrect"] += 1
        else:
            kept.append(r)
    return kept, dropped
