"""Lesson 15 (text is enough) runs end to end in its --fast mode and prints what it decided."""

import pytest

from lessons import l15_text_is_enough
from lesson_checks import check_claims


@pytest.mark.slow
def test_lesson15_text_is_enough(capsys, runs_tmp):
    out = l15_text_is_enough.main(["--fast"])
    text = capsys.readouterr().out
    assert len(out["seeds"]) == 2 and out["n_train"] > 0
    methods = set(l15_text_is_enough.METHODS)
    assert set(out["table"]) == methods
    assert all(0.0 <= v <= 1.0 for row in out["table"].values() for v in row.values())
    # both tokenizations drawn, the refusal printed, the HTTP labelling compared with the stored file
    assert text.count("loss is computed here") >= 2 and "word-level KD needs one tokenizer" in text
    for word in ("OpenAI-style completions", "teacher's sorted top 3", "Check yourself"):
        assert word in text
    # every conclusion is a verdict, printed as it was decided; the exact facts hold even in --fast
    check_claims(out["claims"], text)  # every conclusion a verdict, printed as decided, saved for the README
    facts = [c for c in out["claims"] if c.diff is None]
    assert len(facts) == 4 and all(c.verdict == "holds" for c in facts), [c.sentence() for c in facts]
