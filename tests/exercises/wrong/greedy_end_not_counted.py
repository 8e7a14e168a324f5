"""Wrong: the end token does not count toward max_new_tokens, so a cut-off answer can still 'end'."""
from tests.exercises.reference import *  # noqa: F401,F403
from tests.exercises.reference import ex19_greedy_decode as _right


def ex19_greedy_decode(model, prompt_ids, max_new_tokens, end_id):
    tokens, ended = _right(model, prompt_ids, max_new_tokens + 1, end_id)
    return tokens[:max_new_tokens], ended
