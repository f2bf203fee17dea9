"""Adversarial review of rate limiting: inputs, edge times, header safety, Redis failure paths.

Each test here was written against a defect found in review (it failed before the fix), or pins down a
property the review checked and that nothing else covers.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import bastion
import pytest
import redis

from tests.servers import RedisServer, start_redis

S = 1_000_000_000


def fake(policies: Any, **kw: Any) -> tuple[bastion.RateLimiter, list[int]]:
    t = [5 * S]
    return bastion.RateLimiter(policies, clock=lambda: t[0], **kw), t


# ------------------------------------------------------------------------------------------------ inputs


def test_an_unlimited_tier_still_rejects_keys_that_are_not_str_or_bytes() -> None:
    lim, _ = fake({"t": bastion.Rate(1), "admin": None}, default="t")
    for bad in (None, 42, 4.2, ["k"], bytearray(b"k"), memoryview(b"k")):
        with pytest.raises(bastion.ConfigurationError):
            lim.allow(bad, "admin")  # type: ignore[arg-type]
        with pytest.raises(bastion.ConfigurationError):
            lim.check(bad, "admin")  # type: ignore[arg-type]
        with pytest.raises(bastion.ConfigurationError):
            lim.acquire(bad, "admin")  # type: ignore[arg-type]
        with pytest.raises(bastion.ConfigurationError):
            lim.reset(bad, "admin")  # type: ignore[arg-type]
    assert lim.allow("root", "admin")
    assert lim.allow(b"root", "admin")
    assert lim.check("root", "admin").unlimited


def test_a_str_subclass_cannot_steer_the_key_digest() -> None:
    class Sneaky(str):
        def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
            raise TypeError("not called")

    lim, _ = fake({"t": bastion.Rate(10)})
    lone = "\ud800"
    assert lim.check(Sneaky(lone)).remaining == 9
    assert lim.check(lone).remaining == 8, "the subclass is the same identity as the plain str"
    assert lim.check(Sneaky("plain")).remaining == 9
    from bastion._core import _redis_key_digest

    assert _redis_key_digest(Sneaky(lone)) == _redis_key_digest(lone)


def test_policies_are_read_without_running_python_code() -> None:
    policies: dict[str, Any] = {}

    class Mutating(list[Any]):
        def __iter__(self) -> Iterator[Any]:
            policies[f"extra{len(policies)}"] = None  # would make the dict change size mid-iteration
            return super().__iter__()

    class Raising(list[Any]):
        def __iter__(self) -> Iterator[Any]:
            raise TypeError("not called")

    policies["a"] = Mutating([bastion.Rate(1)])
    policies["b"] = Raising([bastion.Rate(2), bastion.Rate(20, per=60)])
    lim = bastion.RateLimiter(policies, default="a")  # was a PanicException (then a TypeError)
    assert lim.policies == {"a": [bastion.Rate(1)], "b": [bastion.Rate(2), bastion.Rate(20, per=60)]}
    assert len(policies) == 2, "no __iter__ was called"
    with pytest.raises(bastion.ConfigurationError):
        bastion.RateLimiter({"a": Raising([bastion.Rate(1), "10/s"])})


def test_time_near_the_representable_maximum_never_hangs() -> None:
    # A multi-rate key keeps its update lock in bit 63 of its first TAT. With tau = 2^62 and the clock at
    # its 2^62 ceiling, an admitted request stored TAT = 2^63, the lock bit: the next request on the key
    # spun forever with the GIL held. Run in a child so a regression fails instead of hanging the suite.
    code = textwrap.dedent(
        """
        import bastion
        t = [0]
        try:
            rates = [bastion.Rate(1, per=2**32 / 1e9, burst=2**30), bastion.Rate(1, per=1e-9, burst=2**30)]
        except bastion.ConfigurationError:
            rates = [bastion.Rate(1, per=(2**32 - 1) / 1e9, burst=2**30), bastion.Rate(1, per=1e-9, burst=2**30)]
        lim = bastion.RateLimiter({"m": rates}, clock=lambda: t[0])
        t[0] = 2**64 - 1  # clamped to the ceiling
        assert lim.check("k", cost=2**30).allowed
        d = lim.check("k")
        assert not d.allowed and d.remaining == 0
        peek = lim.check("k", cost=0)
        assert peek.allowed and peek.remaining == 0
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
    with pytest.raises(bastion.ConfigurationError):
        bastion.Rate(1, per=2**32 / 1e9, burst=2**30)  # tau = 2^62: no room left below the lock bit


# ------------------------------------------------------------------------------------------------ headers


@pytest.mark.parametrize(
    "tier",
    ['x"\r\nSet-Cookie: a=b', "a\nb", 'q"uote', "back\\slash", "", "é", "\ud800", "a" * 65, "tab\there"],
)
def test_a_hand_built_decision_cannot_smuggle_text_into_headers(tier: str) -> None:
    with pytest.raises(bastion.ConfigurationError):
        bastion.Decision(False, tier, [(1, 1, 0, 1.0, 1.0)])


def test_decision_source_of_any_str_is_a_configuration_error() -> None:
    for source in ("\ud800", "", "LOCAL"):
        with pytest.raises(bastion.ConfigurationError):
            bastion.Decision(True, "t", source=source)
    ok = bastion.Decision(True, "a b,c;d=e", [(5, 1, 4, 0.2, 0.0)])
    assert ok.headers() == [("RateLimit-Policy", '"a b,c;d=e";q=5;w=1'), ("RateLimit", '"a b,c;d=e";r=4;t=1')]
