"""Remote sources: memory:// in-process, and s3:// through the real s3fs/botocore client against
a local S3 server (moto's server mode on loopback), started and stopped by the fixture."""

from __future__ import annotations

import io
import pickle
import socket
from collections.abc import Iterator

import pytest

from mlward import Verdict, scan
from mlward.cli.main import ExitCode, main

GADGET = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R."


def test_memory_urls_are_scanned() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/mlward-test/evil.pkl", GADGET)
    fs.pipe("/mlward-test/ok.pkl", pickle.dumps({"a": 1}))
    verdicts = {a.path: a.verdict for a in scan(["memory://mlward-test"]).artifacts}
    assert verdicts == {
        "memory:///mlward-test/evil.pkl": Verdict.MALICIOUS,
        "memory:///mlward-test/ok.pkl": Verdict.CLEAN,
    }


def test_missing_remote_object_is_an_error() -> None:
    assert main(["scan", "memory://mlward-test-missing/x.pkl"]) == ExitCode.ERROR


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield endpoint
    finally:
        server.stop()


def test_s3_through_the_real_client(s3: str) -> None:
    import s3fs
    import torch

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3}, skip_instance_cache=True)
    fs.mkdir("models")
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(64, 64)}, buffer)
    fs.pipe("models/clean/model.pt", buffer.getvalue())
    fs.pipe("models/evil/payload.bin", GADGET)
    report = scan(["s3://models/"])
    verdicts = {a.path: a.verdict for a in report.artifacts}
    assert verdicts["s3://models/clean/model.pt"] is Verdict.CLEAN
    assert verdicts["s3://models/evil/payload.bin"] is Verdict.MALICIOUS
    clean = next(a for a in report.artifacts if a.path.endswith("model.pt"))
    assert clean.formats == ("pytorch-zip",)


def test_https_urls_through_a_local_server(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import functools
    import http.server
    import threading

    (tmp_path / "evil.pkl").write_bytes(GADGET)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/evil.pkl"
        assert scan([url]).artifacts[0].verdict is Verdict.MALICIOUS
    finally:
        server.shutdown()
        server.server_close()
