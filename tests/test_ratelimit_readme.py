"""The README's rate-limiting example runs as written."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- ratelimit (issue 4) -->", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the rate-limiting section has a Python example"
    code = match.group(1)
    assert "bastion.RateLimiter(" in code
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own documentation
