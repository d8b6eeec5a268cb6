"""A throwaway PostgreSQL server for tests and benchmarks: initdb into a temp dir, start
``postgres`` on 127.0.0.1 at a free port (socket in the temp dir), stop and delete it after.

PostgreSQL refuses to run as root, so as root the server runs as the ``nobody`` user (through
``runuser``) in a temp dir that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

_UNPRIVILEGED = "nobody"
_START_SECONDS = 60


def find_bin_dir() -> str | None:
    """The folder holding initdb and postgres: Debian's versioned folders first, then PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(os.path.dirname(os.path.realpath(on_path)))
    for folder in candidates:
        if all(os.access(os.path.join(folder, b), os.X_OK) for b in ("initdb", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", _UNPRIVILEGED, "--", *argv]
    return ["su", "-s", "/bin/sh", _UNPRIVILEGED, "-c", " ".join(argv)]


@contextmanager
def postgres_server(bin_dir: str) -> Iterator[str]:
    """Yield the URL of a fresh database ``mlward`` on a private server; stop it after."""
    # As root the server user must reach the folder: /tmp, not a private $TMPDIR.
    root = tempfile.mkdtemp(prefix="mlward-pg-", dir="/tmp" if os.geteuid() == 0 else None)
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam(_UNPRIVILEGED)
        os.chown(root, user.pw_uid, user.pw_gid)
    os.chmod(root, 0o700)
    data = os.path.join(root, "data")
    log_path = os.path.join(root, "server.log")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    subprocess.run(
        _as_server_user(
            [
                f"{bin_dir}/initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
    )
    port = _free_port()
    server = subprocess.Popen(
        _as_server_user(
            [
                f"{bin_dir}/postgres",
                "-D",
                data,
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                root,
                "-c",
                "fsync=off",
                "-c",
                "max_connections=50",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "wb"),  # noqa: SIM115 - the server writes it until stopped
        env=env,
        cwd=root,
    )
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_ready(url, server, log_path)
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlward")
        yield f"postgresql://postgres@127.0.0.1:{port}/mlward"
    finally:
        # Fast shutdown: open connections (a killed test's) are cut instead of waited for.
        subprocess.run(
            _as_server_user([f"{bin_dir}/pg_ctl", "-D", data, "stop", "-m", "fast", "-w"]),
            capture_output=True,
            env=env,
            cwd=root,
            check=False,
        )
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(url: str, server: subprocess.Popen[bytes], log_path: str) -> None:
    import psycopg

    deadline = time.monotonic() + _START_SECONDS
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                with open(log_path, encoding="utf-8", errors="replace") as handle:
                    raise RuntimeError(f"PostgreSQL did not start:\n{handle.read()}") from None
            time.sleep(0.1)
