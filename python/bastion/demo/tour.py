"""The tour: requests a client would send, each with the status (and error code) it must get, over HTTP.

Each :class:`Step` is sent with httpx and checked; :func:`walk` returns the results and :func:`failures` the
steps whose answer differed from what they expect, so the demo exits nonzero when bastion misbehaves. The
tables print the request, the status, the body (and the headers a client acts on) and the time.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.demo.tokens import Tokens

#: the response headers a client acts on, shown under a step's row
NOTABLE = ("www-authenticate", "retry-after", "ratelimit")
BODY_WIDTH = 72


@dataclass(frozen=True)
class Step:
    """One request: ``who`` holds the credential in ``headers``; ``expect`` is the status every one of the
    ``repeat`` requests must get, ``code`` the ``error`` member its body must carry (None: any body), and
    ``header`` a response header it must carry."""

    who: str
    method: str
    path: str
    expect: int
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    repeat: int = 1
    header: str | None = None


@dataclass
class Result:
    step: Step
    statuses: list[int]
    body: str
    headers: dict[str, str]
    ms: float

    @property
    def code(self) -> str | None:
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return None
        return parsed.get("error") if isinstance(parsed, dict) else None

    @property
    def ok(self) -> bool:
        s = self.step
        return (
            all(status == s.expect for status in self.statuses)
            and (s.code is None or self.code == s.code)
            and (s.header is None or s.header.lower() in self.headers)
        )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_key(token: str) -> dict[str, str]:
    return {"X-API-Key": token}


def steps(t: Tokens) -> list[Step]:
    """The tour of the demo's API, in order (the third-party burst last but one: nothing else spends it)."""
    me, reports, report = "/api/v1/me", "/api/v1/reports", "/api/v1/reports/7"
    return [
        Step("anonymous", "GET", "/health", 200),
        Step("user JWT", "GET", me, 200, headers=bearer(t.user)),
        Step("user JWT", "GET", reports, 200, headers=bearer(t.user)),
        Step("anonymous", "GET", reports, 401, "missing_token"),
        Step("not a JWT", "GET", reports, 401, "token_malformed", bearer("hello.world")),
        Step("bad header", "GET", reports, 400, "invalid_request", {"Authorization": "Bearer a b"}),
        Step("expired JWT", "GET", me, 401, "token_expired", bearer(t.expired)),
        Step("forged JWT", "GET", me, 401, "invalid_signature", bearer(t.forged)),
        Step("other API's JWT", "GET", me, 401, "invalid_audience", bearer(t.other_audience)),
        Step("revoked key", "GET", me, 401, "token_revoked", api_key(t.revoked)),
        Step("unknown key", "GET", me, 401, "unknown_token", api_key(t.unknown)),
        Step("internal JWT", "GET", reports, 403, "insufficient_scope", bearer(t.internal)),
        Step("user JWT", "DELETE", report, 403, "forbidden", bearer(t.user)),
        Step("admin JWT", "DELETE", report, 200, headers=bearer(t.admin)),
        Step("internal JWT", "GET", me, 200, headers=bearer(t.internal), repeat=30),
        Step("admin JWT", "GET", reports, 200, headers=bearer(t.admin), repeat=30),
        *(Step("3rd-party key", "GET", reports, 200, headers=api_key(t.third_party)) for _ in range(3)),
        Step("3rd-party key", "GET", reports, 429, "rate_limited", api_key(t.third_party), header="Retry-After"),
    ]


def walk(client: Any, tour: Iterable[Step]) -> list[Result]:
    """Send every step with ``client`` (an ``httpx.Client`` on the server's base URL)."""
    results = []
    for step in tour:
        statuses, times = [], []
        for _ in range(step.repeat):
            t0 = time.perf_counter()
            response = client.request(step.method, step.path, headers=step.headers)
            times.append(time.perf_counter() - t0)
            statuses.append(response.status_code)
        notable = {k: v for k, v in response.headers.items() if k.lower() in NOTABLE}
        results.append(Result(step, statuses, response.text, notable, statistics.median(times) * 1e3))
    return results


def failures(results: Sequence[Result]) -> list[Result]:
    return [r for r in results if not r.ok]


def _clip(text: str, width: int = BODY_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(results: Sequence[Result]) -> str:
    """One row per step: number, who, request, expected and actual status, median time, body."""
    who = max(len("who"), *(len(r.step.who) for r in results))
    req = max(len("request"), *(len(f"{r.step.method} {r.step.path} ×{r.step.repeat}") for r in results))
    lines = [f"{'#':>2}  {'who':<{who}}  {'request':<{req}}  expect  got    ms      body"]
    for n, r in enumerate(results, 1):
        s = r.step
        got = str(r.statuses[-1]) if len(set(r.statuses)) == 1 else "/".join(map(str, sorted(set(r.statuses))))
        mark = "✓" if r.ok else "✗"
        request = f"{s.method} {s.path}" + (f" ×{s.repeat}" if s.repeat > 1 else "")
        lines.append(
            f"{n:>2}  {s.who:<{who}}  {request:<{req}}  {s.expect:>6}  {got:>3} {mark} {r.ms:>6.2f}  {_clip(r.body)}"
        )
        for name, value in r.headers.items():
            if s.expect >= 400 or (name == "ratelimit" and s.who == "3rd-party key"):
                lines.append(f"{'':>{who + req + 30}}{name}: {value}")
    return "\n".join(lines)


AUDIT_COLUMNS = (
    ("http.response.status_code", "status"),
    ("http.request.method", "method"),
    ("url.path", "path"),
    ("enduser.id", "enduser.id"),
    ("bastion.auth.token_type", "token"),
    ("bastion.auth.reason", "reason"),
    ("bastion.ratelimit.tier", "tier"),
    ("bastion.ratelimit.remaining", "left"),
)


def audit_table(records: Sequence[dict[str, Any]]) -> str:
    """The audit records' main fields (the file has them all); a run of identical rows is one row, counted."""
    rows: list[list[str]] = []
    counts: list[int] = []
    for rec in records:
        row = [("" if rec.get(key) is None else str(rec[key])) for key, _ in AUDIT_COLUMNS]
        if rows and rows[-1][:-1] == row[:-1]:  # the same but for what is left of the budget
            first = rows[-1][-1].split("…")[0]
            rows[-1][-1] = first if first == row[-1] else f"{first}…{row[-1]}"
            counts[-1] += 1
        else:
            rows.append(row)
            counts.append(1)
    rows = [[f"{n}×" if n > 1 else "", *row] for n, row in zip(counts, rows, strict=True)]
    titles = ["", *(title for _, title in AUDIT_COLUMNS)]
    widths = [max(len(title), *(len(row[i]) for row in rows)) for i, title in enumerate(titles)]
    out = ["  ".join(f"{title:<{w}}" for title, w in zip(titles, widths, strict=True)).rstrip()]
    out.extend("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(out)


def leaked(text: str | bytes, tokens: Tokens) -> list[str]:
    """The names of the tokens ``text`` contains (whole, or their signature / secret part)."""
    data = text.encode() if isinstance(text, str) else text
    found = []
    for name, token in vars(tokens).items():
        tail = token.rsplit(".", 1)[-1] if "." in token else token
        if token.encode() in data or tail.encode() in data:
            found.append(name)
    return found
