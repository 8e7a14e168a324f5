"""Wrong: the log-prob of token t is read from the logits AT position t (which predict token t+1)."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex12_answer_logprob(model, ids, mask):
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([ids]))[0], dim=-1)  # (T, V)
    return sum(float(logp[t, ids[t]]) for t in range(len(ids)) if mask[t])
