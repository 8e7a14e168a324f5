"""What every lesson test of lessons 11-15 checks about the conclusions a --fast run printed."""

from minikd.machinery import rendering

FAST_VERDICTS = ("holds", "consistent (not separable)", "needs the default run")


def check_claims(claims: list, text: str) -> None:
    """At least one computed conclusion; each printed as decided, none asserting more than a tiny run can;
    and the saved results re-decide to the same sentences (what `minikd readme` would show)."""
    assert claims, "the lesson states no computed conclusion"
    for c in claims:
        assert c.sentence() in text
        assert c.fast and c.verdict in FAST_VERDICTS
    saved = rendering.render_lessons("quick")
    assert all(c.sentence() in saved for c in claims)
