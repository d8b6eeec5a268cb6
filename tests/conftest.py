"""Shared fixtures: a private PostgreSQL server for the transparency log tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.pg_server import find_bin_dir, postgres_server

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """One server per test process (each xdist worker starts its own)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = (
            "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin "
            "or on PATH; install Debian's 'postgresql' package (.ci/run does)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI must run these tests, never skip them
        pytest.skip(f"SKIPPED POSTGRESQL TESTS: {reason}")
    with postgres_server(bin_dir) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    """A fresh, empty database on the shared server."""
    import psycopg

    name = f"t{os.getpid()}_{next(_databases)}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
