"""Wrong: the output layer is counted on top of the token embedding, though the two are one tied matrix."""
from tests.exercises.reference import *  # noqa: F401,F403
from tests.exercises.reference import ex06_count_params as _right


def ex06_count_params(config):
    return _right(config) + config.vocab_size * config.n_embd
