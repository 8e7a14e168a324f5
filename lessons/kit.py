"""The lesson kit: the few calls a lesson makes to get its data, a trained teacher and its students.

Each call trains what it needs the first time and caches it under runs/<profile>/ (keyed by its settings),
so later lessons and the main job reuse it. What happens inside (caches, the profile's settings) is the
machinery's business (minikd/machinery/stages.py); a lesson reads only these names.
"""

from minikd.evaluate import SLACK, answer_limit
from minikd.machinery.stages import (Profile, get_profile, get_teacher, load_split, profile_dir, prompt_records,
                                     student_on, teacher_greedy, train_model, train_student, usable_answers)
from minikd.machinery.rendering import save_lesson
from minikd.machinery.students import word_kd_choice
from minikd.what_seqkd_loses import form_entropy_bits

__all__ = ["Profile", "get_profile", "get_teacher", "load_split", "profile_dir", "student_on", "train_model",
           "train_student", "usable_answers", "save_lesson",
           "SLACK", "answer_limit", "form_entropy_bits", "prompt_records", "teacher_greedy", "word_kd_choice"]
