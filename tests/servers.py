"""Throwaway PostgreSQL and Redis servers on loopback, started by the test set-up.

CI (``.ci/run``) installs Debian's ``postgresql`` and ``redis-server`` when they are missing; these helpers
start a private instance of each in a temporary directory on a free port, and stop it at the end of the
session. A test that needs a server it cannot start skips with the reason, except under CI
(``CI`` set in the environment), where it fails: CI must never skip them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not come up within {timeout}s")


def unavailable(reason: str) -> None:
    """Skip (developer machine) or fail (CI) when a server cannot be started."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must not skip: {reason}")
    pytest.skip(reason)


# ----------------------------------------------------------------------------------------------------- redis


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_redis(port: int | None = None) -> RedisServer:
    """Start redis-server without persistence on a free loopback port."""
    exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if exe is None:
        raise FileNotFoundError("redis-server is not installed (Debian: apt-get install redis-server)")
    port = port or free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
    except RuntimeError:
        proc.kill()
        raise
    return RedisServer(port, proc)


# ------------------------------------------------------------------------------------------------ postgresql


@dataclass
class PostgresServer:
    port: int
    datadir: str
    bindir: str
    user: str | None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        _pg(self, [os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-m", "immediate", "stop"], check=False)
        shutil.rmtree(os.path.dirname(self.datadir), ignore_errors=True)


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; under root (CI) run its tools as the postgres system user.
    return ["runuser", "-u", user, "--", *argv] if user else argv


def _pg(server: PostgresServer, argv: list[str], check: bool = True) -> None:
    subprocess.run(_as_user(server.user, argv), check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start_postgres() -> PostgresServer:
    """initdb a throwaway cluster in a temp dir and start it on a free loopback port (trust auth)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    bindir = os.path.dirname(candidates[-1])
    user: str | None = None
    root = tempfile.mkdtemp(prefix="bastion-pg-")
    if os.geteuid() == 0:
        user = "postgres"
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    os.chmod(root, 0o755)
    datadir = os.path.join(root, "data")
    port = free_port()
    server = PostgresServer(port, datadir, bindir, user)
    _pg(
        server,
        [os.path.join(bindir, "initdb"), "-D", datadir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
    )
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
        " -c fsync=off -c max_connections=100"
    )
    _pg(
        server,
        [os.path.join(bindir, "pg_ctl"), "-D", datadir, "-o", opts, "-l", os.path.join(root, "log"), "-w", "start"],
    )
    _wait_port(port)
    return server


@contextlib.contextmanager
def running(start: object) -> Iterator[object]:
    server = start()  # type: ignore[operator]
    try:
        yield server
    finally:
        server.stop()
