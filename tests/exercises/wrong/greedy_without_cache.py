"""Wrong (slow, not incorrect): no KV cache -- every step re-reads the whole sequence, O(n^2) work."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex19_greedy_decode(model, prompt_ids, max_new_tokens, end_id):
    seq, tokens = list(prompt_ids), []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = int(model(torch.tensor([seq]))[0, -1].argmax())
            if nxt == end_id:
                return tokens, True
            tokens.append(nxt)
            seq.append(nxt)
    return tokens, False
