"""Route rules: which authentication, scopes and roles a request needs, by path pattern and method.

A :class:`Rule` is validated when it is made, by the same Rust core that matches it (``_core.RuleSet``),
so a rule that constructs is a rule that compiles. :func:`compile` turns rules into the ``_core.RuleSet``
the middleware matches per request; the first rule whose path and method match applies, and a path no
rule matches needs a valid token unless ``default=`` says otherwise.

Patterns: ``{name}`` matches one non-empty segment; a trailing ``*`` makes the pattern a prefix of the
path string (``/reports*`` matches ``/reports``, ``/reports/1`` and ``/reportsX``; ``/public/*`` matches
``/public/`` and below, not ``/public``). Rules match the decoded path the application routes on; a request
path with ``.``/``..`` segments or ``//`` is refused (``InvalidRequest``) rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from bastion import _core
from bastion.errors import ConfigurationError

__all__ = ["AuthMode", "Rule", "compile"]

#: ``"required"``: a valid token; ``"optional"``: a token is checked if sent; ``"none"``: no token looked at.
AuthMode = Literal["required", "optional", "none"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)


def _names(value: object, field: str, items: str = "strings") -> tuple[Any, ...]:
    """Any iterable as a tuple; a lone string is refused (it would iterate as characters)."""
    if isinstance(value, (str, bytes)):
        raise ConfigurationError(f"{field} must be a list of {items}, not one string: write {field}=[{value!r}]")
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{field} must be a list of {items}, not {type(value).__name__}")
    try:
        return tuple(value)
    except Exception as exc:  # an iterable whose own iteration fails
        raise ConfigurationError(f"{field} could not be read ({type(exc).__name__})") from None


@dataclass(frozen=True, slots=True, init=False)
class Rule:
    """One route rule.

    ``path``: the pattern (``/api/v1/reports/{id}``, ``/reports*``, ``/public/*``). ``methods`` (default
    ``None``: every method): the methods it applies to, case-insensitive, stored upper-case; ``GET`` also
    covers ``HEAD``. ``scopes`` (default none): every one is required. ``roles`` (default none): any one is
    required. ``auth`` (default ``"required"``): ``"required"``, ``"optional"`` or ``"none"``; scopes and
    roles need ``"required"``. Raises ``ConfigurationError`` saying what to change.
    """

    path: str
    methods: tuple[str, ...] | None
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    auth: AuthMode

    def __init__(
        self,
        path: str,
        *,
        methods: Iterable[str] | None = None,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        auth: AuthMode = "required",
    ) -> None:
        spec = (path, None if methods is None else _names(methods, "methods"), _names(scopes, "scopes"))
        compiled = _core.RuleSet([(*spec, _names(roles, "roles"), auth)])[0]
        for name, value in zip(_core.RuleSet.FIELDS, compiled, strict=True):
            object.__setattr__(self, name, value)

    def _spec(self) -> tuple[str, tuple[str, ...] | None, tuple[str, ...], tuple[str, ...], str]:
        return (self.path, self.methods, self.scopes, self.roles, self.auth)


def compile(rules: Iterable[Rule], *, exempt: Iterable[str] = (), default: AuthMode = "required") -> _core.RuleSet:
    """The ``_core.RuleSet`` for ``rules``, in order, after one ``auth="none"`` rule per ``exempt`` path.

    ``default`` (``"required"``): the mode for paths no rule matches.
    """
    ordered = [Rule(path, auth="none") for path in _names(exempt, "exempt")]
    for rule in _names(rules, "rules", "bastion.Rule objects"):
        if not isinstance(rule, Rule):
            raise ConfigurationError(f"rules must be bastion.Rule objects, not {type(rule).__name__}")
        ordered.append(rule)
    return _core.RuleSet([r._spec() for r in ordered], default)
