"""Wrong: the <|response|> template token is inside the mask (off by one at the start of the answer)."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex01_render_with_mask(tok, prompt, response):
    ids, mask = tok.render(prompt, response)
    start = mask.index(1)
    return ids, mask[:start - 1] + [1] + mask[start:]
