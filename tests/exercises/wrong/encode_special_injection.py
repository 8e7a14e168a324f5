"""Wrong: user text is encoded with every special token allowed -- "<|end|>" in a prompt becomes the real end id."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex02_encode_user_text(enc, text):
    return enc.encode(text, allowed_special="all")
