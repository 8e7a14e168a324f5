"""Wrong: the targets are shifted but the mask is not (mask[:-1] instead of mask[1:]): the last answer
token (<|end|>) loses its target and the <|response|> position gains one."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex10_collate(examples, pad_id):
    return collate([(ids, mask[1:] + [0]) for ids, mask in examples], pad_id)
