"""The main job (`make demo`) runs end to end and shows what it claims."""

from __future__ import annotations

import pytest
from bastion.__main__ import main


def test_demo_runs_and_reports_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for alg in ("HS256", "RS256", "ES512", "EdDSA"):
        assert f"\n{alg} " in out
    for code in ("token_expired", "invalid_signature", "unsupported_algorithm", "unknown_key"):
        assert code in out
    # opaque part: refusals with exact codes, and nothing at rest gives the token away
    for code in ("token_revoked", "token_malformed", "unknown_token"):
        assert code in out
    assert "the database file holds the token: False" in out
    # rate-limit part: the burst of 5 admits five, then refuses with Retry-After
    assert out.count("allowed   ") == 5
    assert "refused, retry after" in out
    assert "'Retry-After': '1'" in out
