"""Wrong: the KL runs the other way, KL(student || teacher) -- weighted by the student's probabilities."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex25_entropy_and_kl(student_logits, teacher_logits, targets):
    entropy, _ = answer_entropy_kl(student_logits, teacher_logits, targets)
    _, reverse = answer_entropy_kl(teacher_logits, student_logits, targets)  # KL(p_s || p_t)
    return entropy, reverse
