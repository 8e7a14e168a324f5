"""Wrong: the teacher's token-passes are priced at the STUDENT's size, as if both models were as big."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex29_matched_seq_kd_steps(on_policy, seq_kd_tokens, n_student, n_teacher):
    budget = Compute(**on_policy).flops(n_student, n_student)
    spent, steps = 0, 0
    while spent < budget:
        spent += 6 * n_student * seq_kd_tokens[steps]
        steps += 1
    return steps
