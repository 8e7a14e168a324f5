"""Wrong: the filter never looks at `ended`, so answers cut off by the token limit are kept when they verify."""
from tests.exercises.reference import *  # noqa: F401,F403
from tests.exercises.reference import ex22_filter_records as _right


def ex22_filter_records(records, verify_fn):
    return _right([{**r, "ended": True} for r in records], verify_fn)
