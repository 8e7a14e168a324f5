"""Wrong: the sequence-level step puts the loss on every token, prompt included."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex21_seq_kd_step(student, optimizer, tok, records):
    rendered = [tok.render(r["prompt"], r["completion"]) for r in records]
    batch = collate([(ids, [1] * len(ids)) for ids, _ in rendered], tok.pad_id)
    loss = masked_nll(student(batch["inputs"]), batch["targets"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
