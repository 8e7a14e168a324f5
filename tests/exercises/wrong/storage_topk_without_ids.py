"""Wrong: top-k storage counts the k log-probabilities but forgets the k token ids that say which tokens they are."""
from tests.exercises.reference import *  # noqa: F401,F403
from tests.exercises.reference import ex17_storage_bytes as _right


def ex17_storage_bytes(n_answer_tokens, vocab_size, k, text):
    return {**_right(n_answer_tokens, vocab_size, k, text), "topk": n_answer_tokens * k * 2}
