"""Wrong: the forward KL, KL(teacher || student), on the student's samples -- not on-policy's reverse KL."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex28_reverse_kl_loss(student_logits, teacher_logits, targets):
    keep = targets != IGNORE_INDEX
    log_ps = F.log_softmax(student_logits[keep].float(), dim=-1)
    log_pt = F.log_softmax(teacher_logits.detach()[keep].float(), dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum() / keep.sum()
