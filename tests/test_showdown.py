"""The main job on its quick profile, through lesson 9: every stage runs, the table is written, the
second run reuses every cached stage, and the README block is replaced only between its markers."""

import pytest

from lessons import l09_showdown
from minikd import showdown


@pytest.mark.slow
def test_showdown_quick_runs_end_to_end_and_caches(runs_tmp, capsys):
    verdicts = l09_showdown.main(["--fast"])
    assert set(verdicts) == {"greedy_close_to_beam", "seq_beats_word", "teacher_data_likely", "combination_best"}
    out = capsys.readouterr().out
    table = (runs_tmp / "quick" / "results.md").read_text()
    for method in showdown.METHODS + ["teacher (reference)"]:
        assert f"| {method} |" in table
    l09_showdown.main(["--fast"])  # everything is cached now
    again = capsys.readouterr().out
    assert "loaded cached" in again and "cached (" in again
    assert "training on" in out and "training on" not in again


def test_readme_block_is_replaced_between_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{showdown.README_START}\nold\n{showdown.README_END}\noutro\n")
    assert showdown.update_readme("| new |", readme)
    assert readme.read_text() == f"intro\n{showdown.README_START}\n| new |\n{showdown.README_END}\noutro\n"
    plain = tmp_path / "other.md"
    plain.write_text("no markers")
    assert not showdown.update_readme("x", plain)
