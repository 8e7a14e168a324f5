"""Wrong: the <|end|> token is left out of the mask -- the student never learns when to stop."""
from tests.exercises.reference import *  # noqa: F401,F403  (everything else is right)


def ex01_render_with_mask(tok, prompt, response):
    ids, mask = tok.render(prompt, response)
    return ids, mask[:-1] + [0]
