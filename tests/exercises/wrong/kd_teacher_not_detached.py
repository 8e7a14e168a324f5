"""Wrong: the teacher's logits are not detached -- the student's loss sends gradients into the teacher."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex15_kd_loss(student_logits, teacher_logits, targets, temperature, alpha):
    keep = targets != IGNORE_INDEX
    s, t, y = student_logits[keep].float(), teacher_logits[keep].float(), targets[keep]
    hard = F.cross_entropy(s, y)
    log_pt, log_ps = F.log_softmax(t / temperature, -1), F.log_softmax(s / temperature, -1)
    soft = (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean() * temperature**2
    return (1 - alpha) * hard + alpha * soft
