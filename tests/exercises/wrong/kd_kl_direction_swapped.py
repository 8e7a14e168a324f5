"""Wrong: the KL runs the other way, KL(student || teacher) -- mode-seeking instead of the forward KL."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex15_kd_loss(student_logits, teacher_logits, targets, temperature, alpha):
    return kd_loss(student_logits, teacher_logits, targets, temperature=temperature, alpha=alpha, kl="reverse")
