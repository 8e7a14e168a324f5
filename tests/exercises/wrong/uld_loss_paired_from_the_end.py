"""Wrong: the answers are paired from their LAST positions backwards (the longer one cut at its start):
Boizard et al. pair the i-th answer token of each, from the first."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex33_uld_loss(student_logits, targets, teacher_probs, weight):
    keep = targets != IGNORE_INDEX
    total = F.cross_entropy(student_logits[keep].float(), targets[keep], reduction="sum")
    for b, t_rows in enumerate(teacher_probs):
        s_rows = F.softmax(student_logits[b][keep[b]].float(), dim=-1)
        m = min(len(s_rows), len(t_rows))
        total = total + weight * uld_distance(s_rows[len(s_rows) - m:], t_rows[len(t_rows) - m:].detach()).sum()
    return total / keep.sum()
