"""Wrong: after reading the prompt into the KV cache, its last token is fed once more -- every later token
sits one position too far (and the cache holds that token twice)."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex19_greedy_decode(model, prompt_ids, max_new_tokens, end_id):
    tokens = []
    with torch.no_grad():
        cache = model.new_cache(1)
        model(torch.tensor([prompt_ids]), cache)
        logits = model(torch.tensor([prompt_ids[-1:]]), cache)  # BUG: the last prompt token again
        for _ in range(max_new_tokens):
            nxt = int(logits[0, -1].argmax())
            if nxt == end_id:
                return tokens, True
            tokens.append(nxt)
            logits = model(torch.tensor([[nxt]]), cache)
    return tokens, False
