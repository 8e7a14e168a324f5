"""Wrong: the loss averages per sequence first, so a short answer's tokens weigh more than a long one's."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex11_masked_nll(logits, targets):
    rows = [masked_nll(logits[i:i + 1], targets[i:i + 1]) for i in range(logits.size(0))]
    return torch.stack(rows).mean()
