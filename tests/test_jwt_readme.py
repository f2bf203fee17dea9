"""The README's JWT example runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import bastion

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_jwt_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("<!-- jwt (issue 2) -->") :]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the JWT section has no python example"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "README.md (jwt example)", "exec"), namespace)  # noqa: S102
    assert isinstance(namespace["verifier"], bastion.JWTVerifier)
    assert namespace["claims"] == {**namespace["claims"], "sub": "user_1", "scope": "read:reports"}
