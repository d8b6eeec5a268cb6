"""Every hostile sample really runs its payload when loaded by its real loader.

Each sample is built in a temporary directory and loaded in another process exactly as a victim
would (``payloads.victim_source``: pickle.load until EOF, torch.load(weights_only=False),
joblib.load, numpy.load(allow_pickle=True)). The payload only creates a marker file; the test
asserts that file exists afterwards. The loader may raise after the payload ran (broken streams,
magic-number checks); that is expected. A detection test on a sample that never triggers proves
nothing, so this file keeps the corpus honest.

Speed: importing torch costs seconds, so by default a per-worker "victim server" interpreter
imports pickle/numpy/joblib/torch once and forks a fresh child per sample (the child gets
/dev/null as stdin and its own cwd; on exit it joins threads and runs atexit hooks as interpreter
shutdown would). Set ``MLWARD_TRIGGER_FRESH=1`` to start a brand-new ``python -c`` per sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from tests.payloads import ALL_SAMPLES, Sample, victim_source
except ImportError:  # pragma: no cover - tests/ on sys.path instead of the repo root
    from payloads import ALL_SAMPLES, Sample, victim_source

LOAD_TIMEOUT_S = 60
# Some payloads start a child process and return at once (Popen, posix_spawn, asyncio).
MARKER_GRACE_S = 10.0
FRESH = os.environ.get("MLWARD_TRIGGER_FRESH", "") not in ("", "0")

_SERVER_SOURCE = r"""
import json, os, signal, sys, time, traceback
for _name in ("pickle", "numpy", "joblib", "torch"):
    try:
        __import__(_name)
    except Exception:
        pass
_out = sys.stdout
_out.write("ready\n"); _out.flush()
_victim = None
for _line in sys.stdin:
    _req = json.loads(_line)
    _out.flush(); sys.stderr.flush()
    _pid = os.fork()
    if _pid == 0:
        _log = os.open(_req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(_log, 1); os.dup2(_log, 2)
        _null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(_null, 0)
        os.chdir(_req["cwd"])
        _victim = _req["source"]
        break
    _deadline = time.monotonic() + _req["timeout"]
    _status = None
    while _status is None:
        _done, _raw = os.waitpid(_pid, os.WNOHANG)
        if _done:
            _status = os.waitstatus_to_exitcode(_raw)
        elif time.monotonic() > _deadline:
            os.kill(_pid, signal.SIGKILL)
            os.waitpid(_pid, 0)
            _status = "timeout"
        else:
            time.sleep(0.01)
    _out.write(json.dumps({"status": _status}) + "\n"); _out.flush()
if _victim is not None:
    _code = 0
    try:
        _globals = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(_victim, "<victim>", "exec"), _globals)
    except SystemExit as _exit:
        _code = _exit.code if isinstance(_exit.code, int) else 1
    except BaseException:
        traceback.print_exc()
        _code = 1
    # What interpreter shutdown does for a victim (join threads, run atexit hooks) without the
    # seconds it takes to finalise torch.
    import atexit, threading
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(_code)
"""


def _victim_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONWARNINGS": "ignore",
            "PIP_NO_CACHE_DIR": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            # No BLAS/OpenMP thread pools, so forking the server is safe.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
    )
    return env


class _VictimServer:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER_SOURCE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_victim_env(),
            text=True,
        )
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("victim server did not start")
        return proc

    def run(self, source: str, cwd: Path, log: Path) -> object:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"source": source, "cwd": str(cwd), "log": str(log), "timeout": LOAD_TIMEOUT_S}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            self.proc = None
            raise RuntimeError("victim server died")
        return json.loads(reply)["status"]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def victim_server() -> Iterator[_VictimServer]:
    server = _VictimServer()
    yield server
    server.close()


def _wait_for(path: Path, grace_s: float) -> bool:
    deadline = time.monotonic() + grace_s
    while True:
        if path.exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.mark.parametrize("sample", ALL_SAMPLES, ids=lambda s: s.name)
def test_sample_triggers_with_real_loader(
    sample: Sample, tmp_path: Path, victim_server: _VictimServer
) -> None:
    out_dir = tmp_path / "artifact"
    out_dir.mkdir()
    work_dir = tmp_path / "cwd"
    work_dir.mkdir()
    marker = tmp_path / f"marker-{sample.name}"
    log = tmp_path / "victim.log"

    artifact = sample.build(out_dir, marker)
    assert artifact.is_file(), f"{sample.name}: build did not write {artifact}"
    assert out_dir in artifact.parents, f"{sample.name}: artifact written outside out_dir"
    assert not marker.exists(), f"{sample.name}: building the sample ran the payload"

    source = victim_source(sample, artifact)
    if FRESH:
        result = subprocess.run(
            [sys.executable, "-c", source],
            cwd=work_dir,
            env=_victim_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=LOAD_TIMEOUT_S,
            check=False,
        )
        status: object = result.returncode
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
    else:
        status = victim_server.run(source, work_dir, log)
        output = log.read_text("utf-8", "replace") if log.exists() else ""

    if not _wait_for(marker, MARKER_GRACE_S):
        pytest.fail(
            f"{sample.name}: loader {sample.loader!r} finished ({status}) without running the "
            f"payload\n{output[-3000:]}"
        )


def test_sample_names_are_unique_kebab_case() -> None:
    names = [sample.name for sample in ALL_SAMPLES]
    assert len(names) == len(set(names))
    for name in names:
        assert name == name.lower() and " " not in name and "_" not in name, name


def test_corpus_is_broad() -> None:
    assert len(ALL_SAMPLES) >= 80
    assert {sample.loader for sample in ALL_SAMPLES} >= {
        "pickle",
        "pickle-py",
        "torch",
        "joblib",
        "numpy",
    }
    assert any(sample.setup for sample in ALL_SAMPLES)
    assert sum(1 for sample in ALL_SAMPLES if sample.advisory) >= 20
