"""Route rules: bastion.rules.Rule validation, compile(), and _core.RuleSet matching."""

from __future__ import annotations

import dataclasses
from typing import Any, get_args

import bastion
import pytest
from bastion import _core
from bastion.rules import AUTH_MODES, AuthMode, Rule, compile

DESIGN_RULES = [
    Rule("/api/v1/reports/{id}", methods=["DELETE"], roles=["admin"]),
    Rule("/api/v1/reports*", scopes=["read:reports"]),
    Rule("/health", auth="none"),
    Rule("/public/*", auth="optional"),
]


def test_rule_fields_and_core_tuple_do_not_drift() -> None:
    assert tuple(f.name for f in dataclasses.fields(Rule)) == _core.RuleSet.FIELDS
    assert set(get_args(AuthMode)) == set(_core.AUTH_MODES) == set(AUTH_MODES)
    for mode in _core.AUTH_MODES:
        assert Rule("/x", auth=mode).auth == mode  # type: ignore[arg-type]
        assert _core.RuleSet([], mode).default == mode


def test_rules_are_frozen_normalised_and_hashable() -> None:
    rule = Rule("/a/{id}", methods=("get", "Post", "GET"), scopes={"read"}, roles=iter(["admin", "admin"]))
    assert rule == Rule("/a/{id}", methods=["GET", "POST"], scopes=["read"], roles=["admin"])
    assert (rule.methods, rule.scopes, rule.roles, rule.auth) == (("GET", "POST"), ("read",), ("admin",), "required")
    assert hash(rule) == hash(Rule("/a/{id}", methods=["get", "post"], scopes=["read"], roles=["admin"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.path = "/b"  # type: ignore[misc]
    assert Rule("/x").methods is None


@pytest.mark.parametrize(
    ("kwargs", "advice"),
    [
        ({"path": "health"}, "start with '/'"),
        ({"path": "/a/*/b"}, "only allowed at the end"),
        ({"path": "/a/{id"}, "whole segment"),
        ({"path": "/a/{id}/{id}"}, "twice"),
        ({"path": "/a//b"}, "empty segment"),
        ({"path": "/a?x=1"}, "query"),
        ({"path": "/a%2Fb"}, "decoded"),
        ({"path": 5}, "must be a str"),
        ({"path": "/a", "auth": "public"}, '"required", "optional" or "none"'),
        ({"path": "/a", "auth": None}, "must be a str"),
        ({"path": "/a", "scopes": [""]}, "empty scope"),
        ({"path": "/a", "scopes": ["read write"]}, "own string"),
        ({"path": "/a", "scopes": "read"}, "scopes=['read']"),
        ({"path": "/a", "scopes": [1]}, "must be a str"),
        ({"path": "/a", "scopes": 1}, "list of strings"),
        ({"path": "/a", "roles": ["ad min"]}, "without whitespace"),
        ({"path": "/a", "methods": []}, "pass None"),
        ({"path": "/a", "methods": "GET"}, "methods=['GET']"),
        ({"path": "/a", "methods": ["GE T"]}, "HTTP method"),
        ({"path": "/a", "scopes": ["read"], "auth": "none"}, 'use auth="required"'),
        ({"path": "/a", "roles": ["admin"], "auth": "optional"}, 'use auth="required"'),
    ],
)
def test_bad_rules_are_configuration_errors_that_say_what_to_do(kwargs: dict[str, Any], advice: str) -> None:
    with pytest.raises(bastion.ConfigurationError) as info:
        Rule(**kwargs)
    assert advice in info.value.message


def idx(rules: _core.RuleSet, method: str, path: str) -> int | None:
    return rules.match(method, path)


def test_params_match_one_non_empty_segment() -> None:
    rules = compile([Rule("/u/{user}/r/{rid}"), Rule("/{any}")])
    assert idx(rules, "GET", "/u/ann/r/7") == 0
    assert idx(rules, "GET", "/u/ann/r/") is None
    assert idx(rules, "GET", "/u/ann/r/7/x") is None
    assert idx(rules, "GET", "/x") == 1
    assert idx(rules, "GET", "/") is None


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("/reports*", "/reports", True),
        ("/reports*", "/reports/1", True),
        ("/reports*", "/reportsX", True),
        ("/reports*", "/report", False),
        ("/public/*", "/public/", True),
        ("/public/*", "/public/a/b.css", True),
        ("/public/*", "/public", False),
        ("/public/*", "/publicX", False),
        ("/*", "/anything", True),
        ("/u/{id}/files/*", "/u/7/files/a", True),
        ("/u/{id}/files/*", "/u/7/files", False),
        ("/health", "/health/", False),
        ("/health", "/Health", False),
        ("/api/", "/api/", True),
        ("/api/", "/api", False),
        ("/café/{x}", "/café/1", True),
    ],
)
def test_patterns(pattern: str, path: str, hit: bool) -> None:
    assert (idx(compile([Rule(pattern)]), "GET", path) == 0) is hit


def test_methods_are_case_insensitive_and_get_covers_head() -> None:
    rules = compile([Rule("/a", methods=["get"]), Rule("/a", methods=["POST"]), Rule("/h", methods=["HEAD"])])
    assert [idx(rules, m, "/a") for m in ("GET", "get", "HEAD", "post", "PUT")] == [0, 0, 0, 1, None]
    assert idx(rules, "HEAD", "/h") == 2
    assert idx(rules, "GET", "/h") is None
    assert idx(compile([Rule("/a", methods=["POST"])]), "HEAD", "/a") is None
    assert rules.match(b"GET", b"/a") == 0


def test_first_match_wins_and_the_default_applies_elsewhere() -> None:
    rules = compile(DESIGN_RULES)
    assert idx(rules, "DELETE", "/api/v1/reports/7") == 0
    assert idx(rules, "GET", "/api/v1/reports/7") == 1
    assert idx(rules, "GET", "/api/v1/reports") == 1
    assert idx(rules, "GET", "/health") == 2
    assert idx(rules, "GET", "/public/logo.png") == 3
    assert idx(rules, "GET", "/admin") is None
    assert rules.default == "required"
    assert compile(DESIGN_RULES, default="none").default == "none"
    assert rules[0] == DESIGN_RULES[0]._spec()
    assert rules[-1][4] == "optional"
    assert len(rules) == 4
    # a later, broader rule never overrides an earlier one
    reordered = compile([DESIGN_RULES[1], DESIGN_RULES[0]])
    assert idx(reordered, "DELETE", "/api/v1/reports/7") == 0


def test_exempt_paths_come_first_as_auth_none() -> None:
    rules = compile(DESIGN_RULES, exempt=["/api/v1/reports/public", "/metrics"])
    assert len(rules) == 6
    assert rules[0] == ("/api/v1/reports/public", None, (), (), "none")
    assert idx(rules, "GET", "/api/v1/reports/public") == 0
    assert idx(rules, "GET", "/metrics") == 1
    assert idx(rules, "GET", "/api/v1/reports/1") == 3
    with pytest.raises(bastion.ConfigurationError, match="exempt"):
        compile(DESIGN_RULES, exempt="/metrics")
    with pytest.raises(bastion.ConfigurationError, match="empty segment"):
        compile(DESIGN_RULES, exempt=["/a//b"])


@pytest.mark.parametrize("bad", [[("/a", None, [], [], "required")], ["/a"], 5])
def test_compile_takes_rule_objects(bad: Any) -> None:
    with pytest.raises(bastion.ConfigurationError, match="Rule"):
        compile(bad)


def test_compile_refuses_an_unknown_default() -> None:
    with pytest.raises(bastion.ConfigurationError, match='"required", "optional" or "none"'):
        compile(DESIGN_RULES, default="public")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        5,
        [5],
        [("/a", None, [], [])],
        [("/a", "GET", [], [], "required")],
        [("/a", None, "read", [], "required")],
        [("/a", None, [], [], 1)],
        [("/a", None, [], [None], "required")],
    ],
)
def test_core_ruleset_refuses_malformed_tuples(bad: Any) -> None:
    with pytest.raises(bastion.ConfigurationError):
        _core.RuleSet(bad)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reports/../admin",
        "/public/../admin",
        "/public/./x",
        "/public/..",
        "/..",
        "//admin",
        "/public//x",
        "/api/v1/reports/%2e%2e/admin".replace("%2e", "."),
    ],
)
def test_paths_not_in_normal_form_are_refused_not_guessed(path: str) -> None:
    with pytest.raises(bastion.InvalidRequest):
        compile(DESIGN_RULES).match("GET", path)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/public/.well-known/x..y", 3),
        ("/public/%2e%2e/admin", 3),  # not decoded: a literal segment, as the application sees it
        ("/api/v1/reports\x00", 1),
        ("/api/v1/reports/7\n", 1),
        ("/API/v1/reports", None),
        ("", None),
        ("*", None),
        ("/public/\udcff", 3),
        ("/health\udcff", None),
    ],
)
def test_hostile_paths_match_literally(path: str, expected: int | None) -> None:
    assert compile(DESIGN_RULES).match("GET", path) == expected


@pytest.mark.parametrize(("method", "path"), [(None, "/a"), ("GET", None), ("GET", 5), (b"GET", ["/a"])])
def test_match_arguments_must_be_text(method: Any, path: Any) -> None:
    with pytest.raises(bastion.InvalidRequest):
        compile(DESIGN_RULES).match(method, path)
