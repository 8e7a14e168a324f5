"""Wrong: the whole example is decoded to text, template tokens included, and split on the string
"<|response|>" -- a prompt that contains that text as plain characters is cut in the wrong place."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex31_retokenize(teacher_tok, student_tok, ids, mask):
    text = teacher_tok.decode(ids)
    prompt, answer = text.removeprefix("<|prompt|>").removesuffix("<|end|>").split("<|response|>", 1)
    return student_tok.render(prompt, answer)
