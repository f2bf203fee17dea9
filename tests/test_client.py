"""Client address and request id: forwarding headers count only from trusted proxies, and never crash."""

from __future__ import annotations

import os
import re

import pytest
from bastion import ConfigurationError
from bastion._client import MAX_HOPS, ClientResolver, Headers, new_request_id
from hypothesis import given
from hypothesis import strategies as st

PROXIES = ["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.7"]
_HEX_ID = re.compile(r"[0-9a-f]{32}")


def xff(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", v.encode()) for v in values]


def fwd(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"forwarded", v.encode()) for v in values]


@pytest.fixture
def resolver() -> ClientResolver:
    return ClientResolver(PROXIES)


def test_no_trusted_proxy_means_the_peer_and_no_header_read() -> None:
    r = ClientResolver()
    spoof = xff("1.1.1.1") + fwd("for=2.2.2.2") + [(b"x-request-id", b"chosen-by-client")]
    assert r.client_address("203.0.113.9", spoof) == "203.0.113.9"
    rid = r.request_id("203.0.113.9", spoof)
    assert rid != "chosen-by-client"
    assert _HEX_ID.fullmatch(rid)
    assert r.client_address(None, spoof) is None
    assert not r.trusts("10.0.0.1")


def test_headers_are_not_even_iterated_without_trusted_proxies() -> None:
    class Exploding:
        def __iter__(self) -> None:
            raise AssertionError("headers read")

    r = ClientResolver()
    headers: Headers = Exploding()  # type: ignore[assignment]
    address, rid = r.resolve("203.0.113.9", headers)
    assert address == "203.0.113.9"
    assert _HEX_ID.fullmatch(rid)


def test_xff_from_an_untrusted_peer_is_ignored(resolver: ClientResolver) -> None:
    assert resolver.client_address("203.0.113.9", xff("1.1.1.1")) == "203.0.113.9"
    assert resolver.client_address("203.0.113.9", fwd("for=1.1.1.1")) == "203.0.113.9"


def test_xff_walks_right_to_left_skipping_trusted_hops(resolver: ClientResolver) -> None:
    # the client wrote 6.6.6.6 itself; 1.1.1.1 is what the first trusted proxy saw
    headers = xff("6.6.6.6, 1.1.1.1, 10.1.2.3")
    assert resolver.client_address("10.0.0.1", headers) == "1.1.1.1"


def test_several_xff_headers_are_one_list(resolver: ClientResolver) -> None:
    assert resolver.client_address("10.0.0.1", xff("6.6.6.6", "1.1.1.1", "10.9.9.9")) == "1.1.1.1"
    assert resolver.client_address("10.0.0.1", xff("6.6.6.6, 1.1.1.1", "192.0.2.7")) == "1.1.1.1"


def test_a_chain_of_only_trusted_hops_gives_the_leftmost(resolver: ClientResolver) -> None:
    assert resolver.client_address("10.0.0.1", xff("10.0.0.5, 10.0.0.6")) == "10.0.0.5"
    assert resolver.client_address("10.0.0.1", []) == "10.0.0.1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("garbage", "10.0.0.1"),
        ("1.1.1.1, garbage", "10.0.0.1"),
        ("garbage, 1.1.1.1", "1.1.1.1"),
        ("1.1.1.1, 10.0.0.8, not-an-ip", "10.0.0.1"),
        ("1.1.1.1, not-an-ip, 10.0.0.8", "10.0.0.8"),
        ("1.1.1.1,, 10.0.0.8", "1.1.1.1"),
        ("unknown", "10.0.0.1"),
        ("", "10.0.0.1"),
        ("1.1.1.1:8080", "1.1.1.1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0::1", "2001:db8::1"),
        ("[2001:db8::1", "10.0.0.1"),
        ("[2001:db8::1]x", "10.0.0.1"),
        ("[1.2.3.4]", "10.0.0.1"),
        ("1.1.1.1\x00", "10.0.0.1"),
        ("9" * 5000, "10.0.0.1"),
    ],
)
def test_malformed_xff_falls_back_to_the_last_valid_hop(resolver: ClientResolver, value: str, expected: str) -> None:
    assert resolver.client_address("10.0.0.1", xff(value)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ('for="192.0.2.60"', "192.0.2.60"),
        ('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ('for="[2001:db8:cafe::17]"', "2001:db8:cafe::17"),
        ("for=[2001:db8:cafe::17]", "2001:db8:cafe::17"),
        ("for=192.0.2.60:8080", "192.0.2.60"),
        ('for="192.0.2.60:_hidden"', "192.0.2.60"),
        ("FOR=192.0.2.60", "192.0.2.60"),
        ("for=6.6.6.6, for=1.1.1.1;proto=https, for=10.0.0.3", "1.1.1.1"),
        ("for=6.6.6.6, for=unknown, for=10.0.0.3", "10.0.0.3"),
        ('for=6.6.6.6, for="_gazonk", for=10.0.0.3', "10.0.0.3"),
        ("for=6.6.6.6, proto=https, for=10.0.0.3", "10.0.0.3"),
        ("for=6.6.6.6;for=1.1.1.1", "10.0.0.1"),
        ('for="1.1.1.1, for=6.6.6.6"', "10.0.0.1"),
        ('for="\\1.1.1.1"', "1.1.1.1"),
        ("for=1.1.1.1, ,, for=10.0.0.4", "1.1.1.1"),
        ('for=6.6.6.6, for="unterminated', "10.0.0.1"),
        ("for=1.1.1.1;", "1.1.1.1"),
        ("=;=,,;", "10.0.0.1"),
        ("", "10.0.0.1"),
    ],
)
def test_forwarded_forms(resolver: ClientResolver, value: str, expected: str) -> None:
    assert resolver.client_address("10.0.0.1", fwd(value)) == expected


def test_forwarded_wins_over_xff_in_auto_mode(resolver: ClientResolver) -> None:
    headers = fwd("for=1.1.1.1") + xff("2.2.2.2")
    assert resolver.client_address("10.0.0.1", headers) == "1.1.1.1"
    assert resolver.client_address("10.0.0.1", xff("2.2.2.2")) == "2.2.2.2"


def test_forwarded_mode_pins_one_header() -> None:
    headers = fwd("for=6.6.6.6") + xff("2.2.2.2")
    assert ClientResolver(PROXIES, forwarded="x-forwarded-for").client_address("10.0.0.1", headers) == "2.2.2.2"
    only_fwd = ClientResolver(PROXIES, forwarded="forwarded")
    assert only_fwd.client_address("10.0.0.1", headers) == "6.6.6.6"
    assert only_fwd.client_address("10.0.0.1", xff("2.2.2.2")) == "10.0.0.1"
    with pytest.raises(ConfigurationError):
        ClientResolver(PROXIES, forwarded="x-real-ip")  # type: ignore[arg-type]


def test_ipv6_and_mapped_peers(resolver: ClientResolver) -> None:
    assert resolver.client_address("2001:db8:ffff::5", xff("1.1.1.1")) == "1.1.1.1"
    assert resolver.client_address("::ffff:10.0.0.1", xff("1.1.1.1")) == "1.1.1.1"
    assert resolver.client_address("2001:db8:fffe::5", xff("1.1.1.1")) == "2001:db8:fffe::5"
    assert resolver.client_address("192.0.2.7", xff("[2001:db8::9]")) == "2001:db8::9"
    assert resolver.client_address("192.0.2.8", xff("1.1.1.1")) == "192.0.2.8"


def test_a_peer_that_is_not_an_address_is_not_trusted(resolver: ClientResolver) -> None:
    assert resolver.client_address("/run/app.sock", xff("1.1.1.1")) == "/run/app.sock"
    assert resolver.client_address("", xff("1.1.1.1")) == ""
    assert not resolver.trusts("10.0.0.1.evil")
    assert not resolver.trusts(None)


def test_the_walk_is_bounded(resolver: ClientResolver) -> None:
    chain = ", ".join(["6.6.6.6"] + ["10.0.0.9"] * (MAX_HOPS + 5))
    assert resolver.client_address("10.0.0.1", xff(chain)) == "10.0.0.9"


def test_str_headers_and_any_name_case(resolver: ClientResolver) -> None:
    assert resolver.client_address("10.0.0.1", [("X-Forwarded-For", "1.1.1.1")]) == "1.1.1.1"
    assert resolver.client_address("10.0.0.1", [("FORWARDED", "for=1.1.1.1")]) == "1.1.1.1"


def test_wsgi_environ(resolver: ClientResolver) -> None:
    environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 1.1.1.1", "HTTP_X_REQUEST_ID": "req-1"}
    assert resolver.resolve(environ["REMOTE_ADDR"], environ) == ("1.1.1.1", "req-1")
    environ["HTTP_FORWARDED"] = 'for="[2001:db8::1]:80"'
    assert resolver.client_address("10.0.0.1", environ) == "2001:db8::1"
    assert resolver.request_id("10.0.0.1", {"HTTP_TRACE_ID": "t.1"}, header_name="Trace-ID") == "t.1"


def test_headers_that_are_not_pairs_never_raise(resolver: ClientResolver) -> None:
    bad: Headers = [("x-forwarded-for",)]  # type: ignore[list-item]
    assert resolver.client_address("10.0.0.1", bad) == "10.0.0.1"
    weird: Headers = [(1, 2)]  # type: ignore[list-item]
    assert resolver.client_address("10.0.0.1", weird) == "10.0.0.1"
    assert resolver.client_address("10.0.0.1", {"HTTP_X_FORWARDED_FOR": 3}) == "10.0.0.1"


def test_request_id_from_a_trusted_proxy(resolver: ClientResolver) -> None:
    assert resolver.request_id("10.0.0.1", [(b"x-request-id", b"abc-123._:Z")]) == "abc-123._:Z"
    assert resolver.request_id("10.0.0.1", [("X-Request-ID", "abc")]) == "abc"
    assert resolver.request_id("10.0.0.1", [(b"x-correlation-id", b"c1")], header_name="X-Correlation-ID") == "c1"


@pytest.mark.parametrize(
    "value",
    ["", "a b", "a\r\nSet-Cookie: x", "x" * 129, "tok/../en", "é", '"quoted"'],
)
def test_an_insane_request_id_is_replaced(resolver: ClientResolver, value: str) -> None:
    rid = resolver.request_id("10.0.0.1", [(b"x-request-id", value.encode())])
    assert rid != value
    assert _HEX_ID.fullmatch(rid)


def test_several_request_ids_are_replaced(resolver: ClientResolver) -> None:
    rid = resolver.request_id("10.0.0.1", [(b"x-request-id", b"a"), (b"x-request-id", b"b")])
    assert _HEX_ID.fullmatch(rid)


def test_request_id_from_an_untrusted_peer_is_replaced(resolver: ClientResolver) -> None:
    rid = resolver.request_id("203.0.113.9", [(b"x-request-id", b"abc")])
    assert _HEX_ID.fullmatch(rid)


def test_resolve_agrees_with_the_two_calls(resolver: ClientResolver) -> None:
    headers = [*xff("6.6.6.6, 1.1.1.1"), (b"x-request-id", b"r-9")]
    assert resolver.resolve("10.0.0.1", headers) == (resolver.client_address("10.0.0.1", headers), "r-9")


def test_generated_ids_are_unique_and_differ_across_fork() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert _HEX_ID.fullmatch(child)
    assert child != new_request_id()


@pytest.mark.parametrize(
    "bad",
    [["10.0.0.1/8"], ["not-an-ip"], ["10.0.0.0/33"], [""], [10], None, 5, ["1.2.3.4", b"5.6.7.8"]],
)
def test_bad_trusted_proxies_are_configuration_errors(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        ClientResolver(bad)  # type: ignore[arg-type]


def test_trusted_proxies_as_one_string() -> None:
    r = ClientResolver("10.0.0.0/8, 192.0.2.7")
    assert r.trusts("10.2.3.4")
    assert r.trusts("192.0.2.7")
    assert not r.trusts("192.0.2.8")
    assert len(r.trusted_proxies) == 2


@given(st.lists(st.tuples(st.sampled_from(["forwarded", "x-forwarded-for", "x-request-id"]), st.text(max_size=80))))
def test_any_header_values_never_raise(pairs: list[tuple[str, str]]) -> None:
    r = ClientResolver(["0.0.0.0/0", "::/0"])
    address, rid = r.resolve("10.0.0.1", pairs)
    assert isinstance(address, str)
    assert r.trusts(address) or address == "10.0.0.1"
    assert 1 <= len(rid) <= 128
