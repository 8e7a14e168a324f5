"""Wrong: a checkpoint is accepted when the vocabulary SIZE matches -- another tokenizer of the same size
gives the same text other ids, and the model reads garbage."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex04_check_tokenizer(ckpt, tok):
    if ckpt["config"]["vocab_size"] != tok.vocab_size:
        raise ValueError(f"checkpoint tokenizer {ckpt.get('tokenizer')} != {tok.fingerprint}")
