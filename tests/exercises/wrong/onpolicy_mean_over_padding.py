"""Wrong: the reverse KL averaged over EVERY position (prompt and padding too), not over the sampled tokens."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex28_reverse_kl_loss(student_logits, teacher_logits, targets):
    log_ps = F.log_softmax(student_logits.float(), dim=-1)
    log_pt = F.log_softmax(teacher_logits.detach().float(), dim=-1)
    return (log_ps.exp() * (log_ps - log_pt)).sum(-1).mean()
