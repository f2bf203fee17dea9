"""Another process on the same token store, for the cross-process revocation tests.

``python -m tests.revocation_child URL POLL_INTERVAL``; reads one JSON line ``{"authorization": ...}`` on stdin
(never argv: a token is not for ``ps`` to show), opens its own ``TokenStore`` and ``Authenticator`` with the
tests' key, and prints JSON lines: ``{"admitted": true}`` once the credential is admitted, then — polling every
millisecond — ``{"refused": code, "at": monotonic}`` when it is refused, or ``{"timeout": true}`` after 10 s.
CLOCK_MONOTONIC is one clock for every process of the machine, so the parent compares ``at`` with its own.
"""

from __future__ import annotations

import json
import sys
import time

import bastion

from tests.jwt_tokens import SECRET
from tests.opaque_support import PEPPER

ISSUER = "https://issuer.test"
TIMEOUT = 10.0


def say(**what: object) -> None:
    sys.stdout.write(json.dumps(what) + "\n")
    sys.stdout.flush()


def main(url: str, poll_interval: float) -> int:
    authorization = json.loads(sys.stdin.readline())["authorization"]
    store = bastion.TokenStore(url, pepper=PEPPER, poll_interval=poll_interval)
    try:
        verifier = bastion.JWTVerifier(
            bastion.Key.hmac(SECRET, kid="k1"), algorithms=["HS256"], issuer=ISSUER, typ="at+jwt"
        )
        auth = bastion.Authenticator(verifier, store)
        first = auth.decide(authorization)
        if first.error is not None:
            say(not_admitted=first.error.code)
            return 1
        say(admitted=True)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            outcome = auth.decide(authorization)
            if outcome.error is not None:
                say(refused=outcome.error.code, at=time.monotonic())
                return 0
            time.sleep(0.001)
        say(timeout=True)
        return 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
