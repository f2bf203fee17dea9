"""Every ```python block of README.md (and of the docs/ pages it links to) runs as written, in order.

Each block is a self-contained example and runs in a fresh namespace. A block that talks to Redis gets the
session's private server in place of the `redis://localhost:6379/0` it shows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "DESIGN.md")]
REDIS_URL = "redis://localhost:6379/0"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[str, str]]:
    """(page:line, code) of every python block, in page order."""
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            blocks.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


BLOCKS = python_blocks()


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_block_runs(where: str, code: str, request: pytest.FixtureRequest) -> None:
    if REDIS_URL in code:
        server = request.getfixturevalue("redis_server")
        request.getfixturevalue("r")  # an empty database, so the example's counts are its own
        code = code.replace(REDIS_URL, server.url)
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own documentation
    assert "bastion" in namespace, f"{where} does not import bastion"


def test_the_readme_starts_with_the_two_commands() -> None:
    # CI (.ci/run) and the README's own contract: a fresh machine runs exactly these two.
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[2:6] == [
        "```bash",
        "make demo    # fresh machine: creates .venv, builds the Rust extension (release), runs the demo API tour",
        "make test    # fresh machine: installs redis-server/postgresql if missing, builds, passes every test",
        "```",
    ]


@pytest.mark.parametrize(
    "api",
    [
        "JWTVerifier(",
        "JWTSigner(",
        "KeySet.from_jwks(",
        "TokenStore(",
        "bastion.RateLimiter(",
        "RedisRateLimiter(",
        "dangerous",
    ],
)
def test_every_capability_has_a_runnable_example(api: str) -> None:
    readme = [code for where, code in BLOCKS if where.startswith("README.md")]
    assert any(api in code for code in readme), f"no README python block uses {api}"


def test_every_linked_page_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link
