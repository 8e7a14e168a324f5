"""Wrong: whole numbers are taken as chunks, ignoring the pre-split pattern."""
from tests.exercises.reference import *  # noqa: F401,F403


def ex03_number_chunks(numbers, pattern):
    return {str(n) for n in numbers}
