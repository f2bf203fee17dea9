"""The main job until the request-path demo exists: mint and verify tokens, print results and timings."""

from __future__ import annotations

import bastion


def run_demo() -> int:
    print(f"bastion {bastion.__version__}")
    return 0
