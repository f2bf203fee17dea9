"""Refusals: the DESIGN §4 table and ``_http.render`` cannot drift; bodies, challenges and headers are safe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bastion import _http, errors
from bastion._core import Decision

DESIGN = Path(__file__).resolve().parent.parent / "docs" / "DESIGN.md"
_PARAM = re.compile(r'([A-Za-z_]+)=("(?:[^"\\]|\\.)*"|[^,\s]+)')
# what a header value may hold at all: no CR, LF or other control character, ASCII only
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


def design_table() -> dict[str, tuple[int, str | None, bool]]:
    """code -> (status, RFC 6750 error or None, whether a WWW-Authenticate challenge is sent), from DESIGN §4."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## 4. Errors", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[int, str | None, bool]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].isdigit():
            continue
        header = cells[2]
        if header in ("—", "-"):
            error, challenge = None, False
        elif header.startswith("(none"):
            error, challenge = None, True
        else:
            error, challenge = header.split()[0], True
        for code in cells[0].split("/"):
            rows[code.strip()] = (int(cells[1]), error, challenge)
    return rows


def auth_error_codes() -> set[str]:
    return {code for code, cls in errors.ERRORS_BY_CODE.items() if issubclass(cls, errors.AuthError)}


def challenge_params(value: str) -> dict[str, str]:
    assert value.startswith("Bearer ")
    return {k: v[1:-1] if v.startswith('"') else v for k, v in _PARAM.findall(value[len("Bearer ") :])}


def header(refusal: _http.Refusal, name: str) -> str | None:
    found = [v for k, v in refusal.headers if k.lower() == name.lower()]
    assert len(found) <= 1
    return found[0] if found else None


def make(code: str) -> errors.AuthError:
    cls = errors.ERRORS_BY_CODE[code]
    assert issubclass(cls, errors.AuthError)
    return cls()


def test_the_design_table_names_every_request_time_error() -> None:
    table = design_table()
    assert table["missing_token"] == (401, None, True)
    assert set(table) == auth_error_codes()


@pytest.mark.parametrize("code", sorted(design_table()))
def test_render_follows_the_design_table(code: str) -> None:
    status, rfc_error, challenge = design_table()[code]
    err = make(code)
    assert (err.status, err.rfc6750_error) == (status, rfc_error)
    refusal = _http.render(err, realm="api")
    assert refusal.status == status
    www = header(refusal, "WWW-Authenticate")
    assert (www is not None) == challenge
    if www is not None:
        params = challenge_params(www)
        assert params["realm"] == "api"
        assert params.get("error") == rfc_error
        assert ("error_description" in params) == (rfc_error is not None)


@pytest.mark.parametrize("code", sorted(design_table()))
def test_every_row_has_a_json_body_and_no_store(code: str) -> None:
    err = make(code)
    refusal = _http.render(err, realm="api")
    assert json.loads(refusal.body) == {"error": code, "message": err.message}
    assert refusal.content_type == "application/json"
    assert header(refusal, "Content-Type") == "application/json"
    assert header(refusal, "Content-Length") == str(len(refusal.body))
    assert header(refusal, "Cache-Control") == "no-store"
    assert (header(refusal, "Retry-After") is not None) == (refusal.status in (429, 503))
    for name, value in refusal.headers:
        assert _FIELD_VALUE.fullmatch(value), (name, value)


def test_missing_token_is_a_bare_challenge() -> None:
    refusal = _http.render(errors.MissingToken(), realm="reports api")
    assert header(refusal, "WWW-Authenticate") == 'Bearer realm="reports api"'


def test_invalid_token_challenge_carries_the_rfc_code_and_the_body_the_fine_one() -> None:
    refusal = _http.render(errors.TokenExpired(), realm="api")
    assert header(refusal, "WWW-Authenticate") == (
        'Bearer realm="api", error="invalid_token", error_description="the token has expired"'
    )
    assert json.loads(refusal.body)["error"] == "token_expired"


def test_insufficient_scope_lists_the_required_scopes() -> None:
    err = errors.InsufficientScope(required_scopes=["read:reports", "write:reports"])
    params = challenge_params(header(_http.render(err, realm="api"), "WWW-Authenticate") or "")
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "read:reports write:reports"


def test_a_scope_outside_the_rfc_grammar_is_left_out() -> None:
    err = errors.InsufficientScope(required_scopes=['bad"scope', "ok", "a\r\nb"])
    www = header(_http.render(err, realm="api"), "WWW-Authenticate") or ""
    assert challenge_params(www)["scope"] == "ok"
    err = errors.InsufficientScope(required_scopes=['only"bad'])
    assert "scope=" not in (header(_http.render(err, realm="api"), "WWW-Authenticate") or "")


def test_forbidden_has_no_scope_parameter() -> None:
    params = challenge_params(header(_http.render(errors.Forbidden(), realm="api"), "WWW-Authenticate") or "")
    assert params["error"] == "insufficient_scope"
    assert "scope" not in params


def test_problem_details_keep_error_and_message() -> None:
    err = errors.InvalidSignature()
    refusal = _http.render(err, realm="api", problem_details=True)
    assert refusal.content_type == "application/problem+json"
    assert header(refusal, "Content-Type") == "application/problem+json"
    assert json.loads(refusal.body) == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": err.message,
        "error": "invalid_signature",
        "message": err.message,
    }
    assert refusal.status_line == "401 Unauthorized"


@pytest.mark.parametrize(
    "realm",
    ['api"\r\nSet-Cookie: session=1', "api\nX-Evil: 1", 'a\\"b', "réalm\x00\x7f", '"'],
)
def test_a_hostile_realm_cannot_inject(realm: str) -> None:
    refusal = _http.render(errors.InvalidRequest(), realm=realm)
    www = header(refusal, "WWW-Authenticate") or ""
    assert _FIELD_VALUE.fullmatch(www)
    assert "\r" not in www
    assert "\n" not in www
    # the realm stays one quoted-string: the parameters after it are the ones render wrote
    params = challenge_params(www)
    assert set(params) == {"realm", "error", "error_description"}
    assert params["error"] == "invalid_request"
    with pytest.raises(errors.ConfigurationError):
        _http.check_realm(realm)


def test_check_realm_accepts_a_plain_realm_and_refuses_non_strings() -> None:
    assert _http.check_realm("api v1") == "api v1"
    for bad in ("", None, b"api", 3):
        with pytest.raises(errors.ConfigurationError):
            _http.check_realm(bad)


def test_a_hostile_message_cannot_inject_into_error_description() -> None:
    err = errors.TokenMalformed('bad "x"\r\nSet-Cookie: a=b\\ \u2026 done')
    www = header(_http.render(err, realm="api"), "WWW-Authenticate") or ""
    assert _FIELD_VALUE.fullmatch(www)
    description = challenge_params(www)["error_description"]
    assert re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]+", description)
    assert description == "bad 'x'  Set-Cookie: a=b/  done"
    assert json.loads(_http.render(err, realm="api").body)["message"] == err.message


def test_a_message_of_only_forbidden_characters_drops_the_description() -> None:
    www = header(_http.render(errors.TokenMalformed("\u2026"), realm="api"), "WWW-Authenticate") or ""
    assert "error_description" not in www
    assert 'error="invalid_token"' in www


def test_a_long_message_is_cut_in_the_header_only() -> None:
    err = errors.TokenMalformed("x" * 1000)
    refusal = _http.render(err, realm="api")
    assert len(challenge_params(header(refusal, "WWW-Authenticate") or "")["error_description"]) == 256
    assert json.loads(refusal.body)["message"] == "x" * 1000


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(0.0, "1"), (0.001, "1"), (1.0, "1"), (1.0001, "2"), (2.5, "3"), (59.99, "60"), (None, "1"), (-3.0, "1")],
)
@pytest.mark.parametrize("cls", [errors.RateLimited, errors.AuthUnavailable])
def test_retry_after_is_whole_seconds_rounded_up(
    cls: type[errors.RateLimited | errors.AuthUnavailable], retry_after: float | None, expected: str
) -> None:
    refusal = _http.render(cls(retry_after=retry_after), realm="api")
    assert header(refusal, "Retry-After") == expected
    assert header(refusal, "WWW-Authenticate") is None


@pytest.mark.parametrize(("retry_after", "expected"), [(float("nan"), "1"), (float("inf"), "86400"), (1e12, "86400")])
def test_retry_after_of_a_nonsense_wait_is_bounded(retry_after: float, expected: str) -> None:
    assert header(_http.render(errors.RateLimited(retry_after=retry_after), realm="api"), "Retry-After") == expected


def test_rate_limited_carries_the_decision_headers_and_one_retry_after() -> None:
    decision = Decision(False, "free", [(100, 60, 0, 12.3, 2.2)], retry_after=2.2)
    refusal = _http.render(errors.RateLimited(), realm="api", decision=decision)
    assert refusal.status == 429
    assert header(refusal, "Retry-After") == "3"  # from the decision, the error had none
    assert header(refusal, "RateLimit-Policy") == '"free";q=100;w=60'
    assert header(refusal, "RateLimit") == '"free";r=0;t=13'
    bare = _http.render(
        errors.RateLimited(retry_after=5), realm="api", decision=decision, include_ratelimit_headers=False
    )
    assert header(bare, "Retry-After") == "5"
    assert header(bare, "RateLimit") is None
    assert header(bare, "RateLimit-Policy") is None


def test_a_refusal_after_an_admitted_decision_carries_its_ratelimit_headers() -> None:
    decision = Decision(True, "free", [(100, 60, 57, 1.3, 0.0)])
    refusal = _http.render(errors.InsufficientScope(required_scopes=["a"]), realm="api", decision=decision)
    assert header(refusal, "RateLimit") == '"free";r=57;t=2'
    assert header(refusal, "Retry-After") is None


def test_ratelimit_headers_for_a_success_response() -> None:
    admitted = Decision(True, "free", [(100, 60, 57, 1.3, 0.0)])
    assert _http.ratelimit_headers(admitted) == [
        ("RateLimit-Policy", '"free";q=100;w=60'),
        ("RateLimit", '"free";r=57;t=2'),
    ]
    refused = Decision(False, "free", [(100, 60, 0, 12.3, 2.2)], retry_after=2.2)
    assert [name for name, _ in _http.ratelimit_headers(refused)] == ["RateLimit-Policy", "RateLimit"]
    assert _http.ratelimit_headers(Decision(True, "admin", [])) == []


def test_asgi_headers_are_lowercase_bytes() -> None:
    refusal = _http.render(errors.RateLimited(retry_after=1), realm="api")
    pairs = refusal.asgi_headers()
    assert pairs == [(k.lower().encode(), v.encode()) for k, v in refusal.headers]
    assert all(k == k.lower() for k, _ in pairs)
    assert (b"retry-after", b"1") in pairs
    assert _http.asgi_headers([("RateLimit", '"t";r=1;t=1')]) == [(b"ratelimit", b'"t";r=1;t=1')]


def test_the_body_says_nothing_but_code_and_message() -> None:
    err = errors.InvalidAudience("the token's audience is not accepted", claim="aud")
    refusal = _http.render(err, realm="api", problem_details=True)
    doc = json.loads(refusal.body)
    assert set(doc) == {"type", "title", "status", "detail", "error", "message"}
    assert "aud" not in refusal.body.decode().replace("audience", "")
