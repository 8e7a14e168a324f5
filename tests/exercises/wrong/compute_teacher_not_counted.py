"""Wrong: the teacher's forward passes are left out of the on-policy run's cost (seq-KD gets too few steps)."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex29_matched_seq_kd_steps(on_policy, seq_kd_tokens, n_student, n_teacher):
    budget = 2 * n_student * on_policy["student_forward"] + 4 * n_student * on_policy["student_backward"]
    spent, steps = 0, 0
    while spent < budget:
        spent += 6 * n_student * seq_kd_tokens[steps]
        steps += 1
    return steps
