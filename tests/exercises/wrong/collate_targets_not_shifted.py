"""Wrong: targets are not shifted -- each position is asked to predict the token it already reads."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex10_collate(examples, pad_id):
    T = max(len(ids) for ids, _ in examples) - 1
    inputs = torch.full((len(examples), T), pad_id)
    targets = torch.full((len(examples), T), IGNORE_INDEX)
    for row, (ids, mask) in enumerate(examples):
        n = len(ids) - 1
        inputs[row, :n] = torch.tensor(ids[:-1])
        targets[row, :n] = torch.where(torch.tensor(mask[:-1]) == 1, torch.tensor(ids[:-1]), IGNORE_INDEX)
    return {"inputs": inputs, "targets": targets}
