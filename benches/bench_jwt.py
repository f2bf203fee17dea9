"""pytest-benchmark: bastion and its peers verifying the same realistic access token (see
``bastion._bench_jwt``). Runs once as a test by default (``--benchmark-disable``); ``make bench`` times it.

Groups: ``<alg> verify`` (bastion, PyJWT, joserfc, oxyjwt; ryjwt where Python >= 3.12 has it) and
``cache hit``. Compare medians within one run only: the machine is shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bastion._bench_jwt import ALGS, THREAD_BATCH, Fixture, bastion_verifier, fixtures, peer_calls, threaded_batch

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

FIXTURES = fixtures()
# Only the peers importable in this interpreter (ryjwt needs Python >= 3.12): nothing is skipped.
PEERS = [name for name, (call, _) in peer_calls(FIXTURES["HS256"]).items() if call is not None]


def _run(benchmark: Any, fn: Callable[[], object], fx: Fixture) -> None:
    result = benchmark(fn)
    assert {k: result[k] for k in fx.claims} == fx.claims


@pytest.mark.parametrize("alg", ALGS)
def test_bastion_verify(benchmark: Any, alg: str) -> None:
    benchmark.group = f"{alg} verify"
    fx = FIXTURES[alg]
    verifier = bastion_verifier(fx)
    _run(benchmark, lambda: verifier.verify(fx.token), fx)


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("alg", ALGS)
def test_peer_verify(benchmark: Any, alg: str, peer: str) -> None:
    benchmark.group = f"{alg} verify"
    fx = FIXTURES[alg]
    call, why = peer_calls(fx)[peer]
    assert call is not None, why
    _run(benchmark, call, fx)


@pytest.mark.parametrize("alg", ["HS256", "RS256"])
def test_bastion_cache_hit(benchmark: Any, alg: str) -> None:
    benchmark.group = "cache hit"
    fx = FIXTURES[alg]
    verifier = bastion_verifier(fx, cache_size=1024)
    verifier.verify(fx.token)
    _run(benchmark, lambda: verifier.verify(fx.token), fx)


@pytest.mark.parametrize("threads", [1, 2])
def test_bastion_rs256_threads(benchmark: Any, threads: int) -> None:
    """RSA verification releases the GIL: two threads finish a batch in about half the time of one."""
    benchmark.group = f"RS256 verify, {THREAD_BATCH} tokens per batch"
    fx = FIXTURES["RS256"]
    batch = threaded_batch(bastion_verifier(fx), fx.token, threads)
    assert benchmark(batch) == THREAD_BATCH
