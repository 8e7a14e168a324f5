"""Wrong: the text is counted in characters, not in the UTF-8 bytes it takes on disk."""
from tests.exercises.reference import *  # noqa: F401,F403
from tests.exercises.reference import ex17_storage_bytes as _right


def ex17_storage_bytes(n_answer_tokens, vocab_size, k, text):
    return {**_right(n_answer_tokens, vocab_size, k, text), "text": len(text)}
