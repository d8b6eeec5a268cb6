"""Scanner benchmark: mlward against picklescan, modelscan, fickling and modelaudit.

Usage (from the repo root; ``make bench`` calls ``bench/run.sh``, which calls this)::

    .venv/bin/python bench/scan_bench.py [--tools ...] [--datasets ...] [--timeout 600]

Steps:

1. Peer environments: each peer gets its own venv under ``bench/.venvs/<peer>`` holding exactly
   what ``pip install <peer>==<pin>`` gives (their pins do not conflict, but separate venvs keep
   one peer's optional imports from changing another's behaviour). If pip's resolver would pull
   torch into a venv, ``torch==2.13.0`` (the local CPU wheel) is installed there first. A stamp
   file makes this a no-op once done. mlward runs from the dev venv (``.venv/bin/mlward``).
2. Datasets: ``bench/bench_datasets.py`` (run in the dev venv) builds ``bench/.data/`` once.
3. Every tool scans every dataset as a subprocess, in its own empty working directory and
   ``$HOME``, with telemetry switched off. Wall time is measured from spawn to reap; memory is
   the peak resident set size of the whole process tree, taken as the larger of (a) the peak of
   the summed RSS of all live descendants, sampled from ``/proc`` every 10 ms by a thread, and
   (b) ``ru_maxrss`` from ``os.wait4`` (the largest single process in the tree, exact). Each
   tool's own output is parsed into clean / flagged / error / inconclusive / timeout.
4. Tables per dataset, target checks, and ``bench/results/scan-<timestamp>.json``.

Exit code: 0 when every target is met or mlward is absent (dry run), 1 when a target is missed,
2 when the harness itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEV_VENV = ROOT / ".venv"
DATASETS: tuple[str, ...] = ("small", "big.pt", "dense.pkl", "big.joblib")
TORCH_PIN = "torch==2.13.0"
MIB = 1024 * 1024

# Environment shared by every tool. modelaudit's telemetry (PostHog) is on by default; its
# source (modelaudit/telemetry.py, _is_disabled) turns it off for PROMPTFOO_DISABLE_TELEMETRY or
# NO_ANALYTICS (also CI / IS_TESTING); `modelaudit debug --json` then reports
# "telemetryDisabled": true. It has no CLI flag for this.
QUIET_ENV: dict[str, str] = {
    "PROMPTFOO_DISABLE_TELEMETRY": "1",
    "NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# =============================================================================================
# Tools
# =============================================================================================


@dataclass
class Outcome:
    status: str  # clean | flagged | error | inconclusive | timeout | missing
    detail: str
    completed: bool  # the tool ran to its end and produced its report
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Capture:
    rc: int | None
    stdout: str
    stderr: str
    timed_out: bool


Parser = Callable[[Capture], Outcome]


@dataclass
class Tool:
    name: str  # label in tables, e.g. "mlward --jobs 2"
    package: str  # distribution name
    pin: str | None  # pip requirement for peers; None for mlward
    python: Path  # interpreter of the tool's venv
    argv: Callable[[Path], list[str]]
    parse: Parser
    datasets: tuple[str, ...] = DATASETS
    is_mlward: bool = False
    version: str = ""
    # Requirements the peer imports but does not declare (installed after the pin).
    undeclared: tuple[str, ...] = ()


def _first_line(text: str, pattern: str) -> str:
    for line in text.splitlines():
        if re.search(pattern, line):
            return line.strip()[:240]
    return ""


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:240] if lines else ""


def _json_tail(text: str) -> Any:
    """The JSON document in a tool's stdout: the whole text, else from the first line that opens
    an object, else the last line that parses. `strict=False` because modelscan prints its JSON
    through rich, which wraps it at the console width (80 columns when stdout is a file),
    putting raw newlines inside strings."""
    text = text.strip()
    if not text:
        return None
    candidates = [text]
    start = text.find("\n{")
    if start >= 0:
        candidates.append(text[start + 1 :])
    candidates += [ln.strip() for ln in reversed(text.splitlines()) if ln.strip().startswith("{")]
    for cand in candidates:
        try:
            return json.loads(cand, strict=False)
        except json.JSONDecodeError:
            continue
    return None


def _crash(cap: Capture) -> Outcome:
    if cap.timed_out:
        return Outcome("timeout", "killed at the time limit", False)
    if cap.rc is not None and cap.rc < 0:
        return Outcome("error", f"killed by signal {-cap.rc}", False)
    why = _first_line(cap.stderr + "\n" + cap.stdout, r"Error|Exception|Traceback")
    return Outcome("error", f"rc={cap.rc}, no report: {why or _tail(cap.stderr)}", False)


def parse_picklescan(cap: Capture) -> Outcome:
    m = re.search(
        r"Scanned files: (\d+)\s+Infected files: (\d+)\s+Suspicious globals: (\d+)\s+"
        r"Dangerous globals: (\d+)",
        cap.stdout,
    )
    if cap.timed_out or not m:
        return _crash(cap)
    scanned, infected, suspicious, dangerous = (int(g) for g in m.groups())
    data = {
        "scanned": scanned,
        "infected": infected,
        "suspicious_globals": suspicious,
        "dangerous_globals": dangerous,
    }
    detail = f"scanned {scanned}, infected {infected}, dangerous globals {dangerous}"
    if cap.rc == 2:
        why = _first_line(cap.stdout + cap.stderr, r"ERROR|WARNING: could not|Exception")
        return Outcome("error", f"{detail}; scan error: {why}", True, data)
    if cap.rc == 1:
        first = _first_line(cap.stdout, r"FOUND")
        return Outcome("flagged", f"{detail}; e.g. {first}", True, data)
    if cap.rc == 0:
        if scanned == 0:
            return Outcome("inconclusive", f"{detail} (nothing scanned)", True, data)
        return Outcome("clean", detail, True, data)
    return _crash(cap)


def parse_modelscan(cap: Capture) -> Outcome:
    doc = _json_tail(cap.stdout)
    if cap.timed_out or not isinstance(doc, dict) or "summary" not in doc:
        return _crash(cap)
    summary = doc.get("summary", {})
    scanned = int(summary.get("scanned", {}).get("total_scanned", 0))
    issues = doc.get("issues", []) or []
    errors = doc.get("errors", []) or []
    flagged_files = {str(i.get("source", "")) for i in issues}
    data = {
        "scanned": scanned,
        "issues": len(issues),
        "flagged_files": len(flagged_files),
        "errors": len(errors),
    }
    detail = (
        f"scanned {scanned}, issues {len(issues)} in {len(flagged_files)} files, "
        f"errors {len(errors)}"
    )
    if errors:
        first = errors[0]
        detail += f"; e.g. {str(first.get('description', first))[:160]}"
    elif issues:
        first = issues[0]
        detail += f"; e.g. {str(first.get('description', first))[:160]}"
    # rc: 0 clean, 1 issues, 2 scan errors, 3 nothing scanned (checked first, so a file that
    # failed to parse also gives 3), 4 usage error.
    status = {0: "clean", 1: "flagged", 2: "error", 3: "inconclusive"}.get(cap.rc or 0, "error")
    if cap.rc is None or (errors and status in ("clean", "inconclusive")):
        status = "error"
    return Outcome(status, f"rc={cap.rc}, {detail}", True, data)


def parse_modelaudit(cap: Capture) -> Outcome:
    doc = _json_tail(cap.stdout)
    if cap.timed_out or not isinstance(doc, dict) or "issues" not in doc:
        return _crash(cap)
    issues = doc.get("issues", []) or []
    serious = [i for i in issues if str(i.get("severity", "")).lower() in ("warning", "critical")]
    critical = [i for i in serious if str(i.get("severity", "")).lower() == "critical"]

    def file_of(issue: dict[str, Any]) -> str:
        loc = str(issue.get("location") or "")
        return loc.split(" (pos", maxsplit=1)[0].split(":", maxsplit=1)[0]

    flagged_files = {file_of(i) for i in serious}
    has_errors = bool(doc.get("has_errors"))
    data = {
        "files_scanned": doc.get("files_scanned"),
        "issues": len(issues),
        "warning_or_critical": len(serious),
        "critical": len(critical),
        "flagged_files": len(flagged_files),
        "has_errors": has_errors,
    }
    detail = (
        f"scanned {doc.get('files_scanned')}, {len(serious)} warning/critical "
        f"({len(critical)} critical) in {len(flagged_files)} files, errors={has_errors}"
    )
    example = (critical or serious or [None])[0]
    if has_errors:
        err = next(
            (
                i
                for i in issues
                if "error" in str(i.get("type", "")).lower()
                or "error" in str(i.get("message", "")).lower()
            ),
            None,
        )
        if err is not None:
            example = err
    if example is not None:
        detail += f"; e.g. {str(example.get('message', ''))[:160]}"
    status = {0: "clean", 1: "flagged", 2: "error"}.get(cap.rc if cap.rc is not None else -1)
    if status == "error" and not has_errors and not serious:
        status = "inconclusive"  # modelaudit's rc 2 also means "inconclusive / nothing scanned"
    return Outcome(status or "error", detail, True, data)


def parse_fickling(cap: Capture) -> Outcome:
    doc = _json_tail(cap.stdout)
    if cap.timed_out or not isinstance(doc, dict) or "counts" not in doc:
        return _crash(cap)
    c = {k: int(v) for k, v in doc["counts"].items()}
    detail = ", ".join(f"{k} {v}" for k, v in c.items() if v)
    examples = doc.get("examples", {})
    for key in ("crashed", "error", "flagged"):
        if examples.get(key):
            detail += f"; e.g. {examples[key][0][:160]}"
            break
    if c.get("flagged"):
        status = "flagged"
    elif c.get("error") or c.get("crashed"):
        status = "error"
    elif c.get("clean"):
        status = "clean"
    else:
        status = "inconclusive"  # everything skipped
    return Outcome(status, detail, True, {"counts": c})


def parse_mlward(cap: Capture) -> Outcome:
    doc = _json_tail(cap.stdout)
    if cap.timed_out or not isinstance(doc, dict) or "artifacts" not in doc:
        return _crash(cap)
    verdicts: dict[str, int] = {}
    for art in doc.get("artifacts", []) or []:
        v = str(art.get("verdict", "?"))
        verdicts[v] = verdicts.get(v, 0) + 1
    n = sum(verdicts.values())
    detail = f"{n} artifacts: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
    if cap.rc == 0 and n and set(verdicts) == {"clean"}:
        status = "clean"
    elif cap.rc == 1 or verdicts.get("suspicious") or verdicts.get("malicious"):
        status = "flagged"
    elif verdicts.get("inconclusive"):
        status = "inconclusive"
    else:
        status = "error" if cap.rc else ("clean" if n else "inconclusive")
    return Outcome(status, detail, True, {"verdicts": verdicts, "summary": doc.get("summary")})


def venv_python(name: str) -> Path:
    return BENCH / ".venvs" / name / "bin" / "python"


def make_tools(mlward_cli: Path) -> list[Tool]:
    def script(venv: str, exe: str) -> Path:
        return BENCH / ".venvs" / venv / "bin" / exe

    return [
        Tool(
            "mlward",
            "mlward",
            None,
            DEV_VENV / "bin" / "python",
            lambda p: [str(mlward_cli), "scan", str(p), "--format", "json"],
            parse_mlward,
            is_mlward=True,
        ),
        Tool(
            "mlward --jobs 2",
            "mlward",
            None,
            DEV_VENV / "bin" / "python",
            lambda p: [str(mlward_cli), "scan", str(p), "--format", "json", "--jobs", "2"],
            parse_mlward,
            datasets=("small",),
            is_mlward=True,
        ),
        Tool(
            "picklescan",
            "picklescan",
            "picklescan==1.0.5",
            venv_python("picklescan"),
            lambda p: [str(script("picklescan", "picklescan")), "-p", str(p)],
            parse_picklescan,
        ),
        Tool(
            "modelscan",
            "modelscan",
            "modelscan==0.8.8",
            venv_python("modelscan"),
            lambda p: [str(script("modelscan", "modelscan")), "scan", "-p", str(p), "-r", "json"],
            parse_modelscan,
        ),
        Tool(
            "fickling",
            "fickling",
            "fickling==0.1.12",
            venv_python("fickling"),
            lambda p: [str(venv_python("fickling")), str(BENCH / "peer_fickling.py"), str(p)],
            parse_fickling,
            # fickling 0.1.12 imports typing_extensions (fickle.py: `from typing_extensions import
            # Buffer`) but declares it only in its dev/lint extras: a plain install on Python 3.11
            # fails with ModuleNotFoundError on `import fickling` and on its CLI.
            undeclared=("typing_extensions",),
        ),
        Tool(
            "modelaudit",
            "modelaudit",
            "modelaudit==0.2.54",
            venv_python("modelaudit"),
            lambda p: [
                str(script("modelaudit", "modelaudit")),
                "scan",
                str(p),
                "--format",
                "json",
                "--no-cache",  # no result cache in $HOME: every run scans for real
                "-q",
            ],
            parse_modelaudit,
        ),
    ]


# =============================================================================================
# Environments
# =============================================================================================


def _run_logged(argv: list[str], logfile: Path) -> None:
    with open(logfile, "a") as f:
        f.write(f"$ {' '.join(argv)}\n")
        f.flush()
        res = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, check=False)
    if res.returncode != 0:
        tail = "\n".join(logfile.read_text().splitlines()[-15:])
        raise RuntimeError(f"command failed ({res.returncode}): {' '.join(argv)}\n{tail}")


def _would_pull_torch(pip: Path, pin: str, logfile: Path) -> bool:
    report = logfile.with_suffix(".resolve.json")
    _run_logged(
        [
            str(pip),
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--report",
            str(report),
            pin,
        ],
        logfile,
    )
    doc = json.loads(report.read_text())
    names = {str(item["metadata"]["name"]).lower() for item in doc.get("install", [])}
    return "torch" in names


def ensure_peer_env(tool: Tool, base_python: str) -> None:
    assert tool.pin is not None
    venv = BENCH / ".venvs" / tool.package
    stamp = venv / ".bench-stamp"
    want = json.dumps(
        {
            "pin": tool.pin,
            "undeclared": list(tool.undeclared),
            "torch_pin": TORCH_PIN,
            "python": base_python,
        }
    )
    if stamp.exists() and stamp.read_text() == want and tool.python.exists():
        return
    log(f"creating {venv.relative_to(ROOT)} for {tool.pin} ...")
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    logfile = venv.parent / f"{tool.package}.install.log"
    logfile.write_text("")
    _run_logged([base_python, "-m", "venv", str(venv)], logfile)
    pip = venv / "bin" / "pip"
    if _would_pull_torch(pip, tool.pin, logfile):
        log(f"{tool.pin} pulls torch: installing {TORCH_PIN} (local CPU wheel) first")
        _run_logged([str(pip), "install", "--quiet", TORCH_PIN], logfile)
    _run_logged([str(pip), "install", "--quiet", tool.pin], logfile)
    if tool.undeclared:
        _run_logged([str(pip), "install", "--quiet", *tool.undeclared], logfile)
    stamp.write_text(want)


def dist_version(python: Path, dist: str) -> str:
    res = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return res.stdout.strip() if res.returncode == 0 else "?"


# =============================================================================================
# Measurement
# =============================================================================================


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return out


def _status_kib(pid: int | str) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc/<pid>/status; (0, 0) once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


class TreeSampler(threading.Thread):
    """Memory of a process tree, read from /proc every `interval` seconds.

    `peak_sum`: peak of the summed RSS of all live processes of the tree. `peak_hwm`: the largest
    per-process high-water mark (VmHWM, kept by the kernel, so it includes spikes between
    samples) last seen for any process of the tree.
    """

    def __init__(self, root: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_sum = 0
        self.hwm: dict[int, int] = {}
        self.max_procs = 0
        self.samples = 0
        self._halt = threading.Event()

    @property
    def peak_hwm(self) -> int:
        return max(self.hwm.values(), default=0)

    def run(self) -> None:
        while not self._halt.is_set():
            total, procs, stack, seen = 0, 0, [self.root], set()
            while stack:
                pid = stack.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                rss, hwm = _status_kib(pid)
                if rss or hwm:
                    total += rss * 1024
                    procs += 1
                    self.hwm[pid] = max(self.hwm.get(pid, 0), hwm * 1024)
                stack.extend(_children(pid))
            self.peak_sum = max(self.peak_sum, total)
            self.max_procs = max(self.max_procs, procs)
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class Measurement:
    rc: int | None
    wall_s: float
    peak_rss_bytes: int
    sampled_tree_sum_peak_bytes: int
    sampled_process_hwm_peak_bytes: int
    wait4_maxrss_bytes: int
    wait4_floor_bytes: int
    cpu_user_s: float
    cpu_sys_s: float
    max_procs: int
    samples: int
    timed_out: bool
    load1_before: float  # 1-minute load average at spawn: other work on the machine skews times


def _load1() -> float:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def measure(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float, out_dir: Path
) -> tuple[Measurement, Capture]:
    """Run `argv` to completion (or SIGKILL of its process group at `timeout`) and measure it.

    Peak memory = max(sampled tree RSS sum, sampled per-process VmHWM, wait4 ru_maxrss). Linux
    seeds a child's ru_maxrss with the spawning process's own high-water mark (the pre-exec mm),
    so ru_maxrss only counts when it exceeds this harness's VmHWM at spawn time (`floor`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = out_dir / "stdout", out_dir / "stderr"
    timed_out = threading.Event()
    floor = _status_kib("self")[1] * 1024
    load1 = _load1()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        sampler = TreeSampler(proc.pid)
        sampler.start()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        sampler.stop()
        rc = os.waitstatus_to_exitcode(status)
        proc.returncode = rc  # reaped by wait4; keep Popen from waiting again
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers a tool left behind in its group
    maxrss = int(ru.ru_maxrss) * 1024  # KiB on Linux
    m = Measurement(
        rc=rc,
        wall_s=wall,
        peak_rss_bytes=max(sampler.peak_sum, sampler.peak_hwm, maxrss if maxrss > floor else 0),
        sampled_tree_sum_peak_bytes=sampler.peak_sum,
        sampled_process_hwm_peak_bytes=sampler.peak_hwm,
        wait4_maxrss_bytes=maxrss,
        wait4_floor_bytes=floor,
        cpu_user_s=ru.ru_utime,
        cpu_sys_s=ru.ru_stime,
        max_procs=sampler.max_procs,
        samples=sampler.samples,
        timed_out=timed_out.is_set(),
        load1_before=load1,
    )
    cap = Capture(
        rc=rc,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        timed_out=m.timed_out,
    )
    return m, cap


def warm_page_cache(path: Path) -> None:
    """Read a dataset once so every tool starts with it in the page cache. A small reused
    buffer keeps this process's own high-water mark (the ru_maxrss floor) low."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    buf = bytearray(1 << 20)
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def tool_env(tool: Tool, home: Path) -> dict[str, str]:
    env = dict(QUIET_ENV)
    env["HOME"] = str(home)
    env["PATH"] = f"{tool.python.parent}:/usr/local/bin:/usr/bin:/bin"
    env["TMPDIR"] = os.environ.get("TMPDIR", "/tmp")
    return env


@dataclass
class RunResult:
    tool: str
    dataset: str
    argv: list[str]
    status: str
    detail: str
    completed: bool
    rc: int | None
    wall_s: float
    peak_rss_mib: float
    samples: list[dict[str, Any]]
    parsed: dict[str, Any]
    files_per_s: float | None = None


def run_tool(
    tool: Tool,
    dataset: str,
    target: Path,
    timeout: float,
    work: Path,
    short_s: float,
    short_repeats: int,
) -> RunResult:
    argv = tool.argv(target)
    measurements: list[tuple[Measurement, Outcome]] = []
    while True:
        k = len(measurements)
        run_dir = work / f"{tool.name.replace(' ', '_')}__{dataset}__{k}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        (run_dir / "home").mkdir(parents=True)
        (run_dir / "cwd").mkdir()
        m, cap = measure(argv, tool_env(tool, run_dir / "home"), run_dir / "cwd", timeout, run_dir)
        outcome = tool.parse(cap)
        outcome.detail = " ".join(outcome.detail.split())  # rich-wrapped output has newlines
        measurements.append((m, outcome))
        # Sub-`short_s` runs are noisy: repeat and report the median wall time.
        if m.wall_s >= short_s or m.timed_out or len(measurements) >= short_repeats:
            break
    walls = [m.wall_s for m, _ in measurements]
    med = statistics.median(walls)
    m0, outcome = min(measurements, key=lambda mo: abs(mo[0].wall_s - med))
    peak = max(m.peak_rss_bytes for m, _ in measurements)
    return RunResult(
        tool=tool.name,
        dataset=dataset,
        argv=argv,
        status=outcome.status,
        detail=outcome.detail,
        completed=outcome.completed,
        rc=m0.rc,
        wall_s=med,
        peak_rss_mib=peak / MIB,
        samples=[asdict(m) for m, _ in measurements],
        parsed=outcome.data,
    )


# =============================================================================================
# Report
# =============================================================================================


def _fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else (f"{x:.1f}x" if x < 100 else f"{x:.0f}x")


def print_table(dataset: str, meta: dict[str, Any], results: list[RunResult]) -> None:
    size = meta.get("bytes", 0)
    extra = f", {meta['files']} files" if "files" in meta else ""
    extra += f", {meta['opcodes']:,} opcodes" if "opcodes" in meta else ""
    print(f"\n=== {dataset} ({size / MIB:,.1f} MiB{extra}) ===")
    ref = next((r for r in results if r.tool == "mlward" and r.completed), None)
    small = dataset == "small"
    head = (
        f"{'tool':<16} {'seconds':>9} {'peak MiB':>9} {'outcome':<13} {'time/mlw':>9} "
        f"{'mem/mlw':>8}"
    )
    head += f" {'files/s':>8}" if small else ""
    print(head + "  detail")
    for r in results:
        tr = r.wall_s / ref.wall_s if ref and ref.wall_s > 0 and r is not ref else None
        mr = (
            r.peak_rss_mib / ref.peak_rss_mib if ref and ref.peak_rss_mib and r is not ref else None
        )
        if r.status == "missing":
            pad = " " * 9 if small else ""
            print(
                f"{r.tool:<16} {'-':>9} {'-':>9} {'missing':<13} {'':>9} {'':>8}{pad}  {r.detail}"
            )
            continue
        line = (
            f"{r.tool:<16} {r.wall_s:>9.3f} {r.peak_rss_mib:>9.1f} {r.status:<13} "
            f"{_fmt_ratio(tr):>9} {_fmt_ratio(mr):>8}"
        )
        if small:
            line += f" {r.files_per_s:>8.1f}" if r.files_per_s else f" {'-':>8}"
        print(f"{line}  {r.detail[:150]}")


@dataclass
class Target:
    name: str
    ok: bool | None  # None: not evaluated
    measured: str
    required: str
    gating: bool = True


def check_targets(by_ds: dict[str, list[RunResult]]) -> list[Target]:
    """Targets from the issue. A failed mlward run misses its targets (ok=False); a target that
    has no finished peer to compare with is not evaluated (ok=None)."""

    def get(ds: str, tool: str) -> RunResult | None:
        return next((r for r in by_ds.get(ds, []) if r.tool == tool), None)

    def peers(ds: str) -> list[RunResult]:
        return [r for r in by_ds.get(ds, []) if not r.tool.startswith("mlward") and r.completed]

    def failed(r: RunResult | None) -> str | None:
        if r is None:
            return "mlward not run"
        return None if r.completed else f"mlward {r.status}: {r.detail[:100]}"

    out: list[Target] = []
    if "dense.pkl" in by_ds:
        mlw = get("dense.pkl", "mlward")
        ps = peers("dense.pkl")
        names = (
            "dense.pkl: >=10x faster than the fastest peer",
            "dense.pkl: peak memory below every peer",
            "dense.pkl: peak memory <= 1/3 of picklescan",
        )
        why = failed(mlw)
        if why or mlw is None:
            out += [Target(n, False, why or "", "") for n in names]
        elif not ps:
            out += [Target(n, None, "no peer finished", "") for n in names]
        else:
            fastest = min(ps, key=lambda r: r.wall_s)
            speedup = fastest.wall_s / mlw.wall_s if mlw.wall_s else float("inf")
            out.append(
                Target(
                    names[0],
                    speedup >= 10,
                    f"{speedup:.1f}x ({mlw.wall_s:.3f} s vs {fastest.tool} {fastest.wall_s:.3f} s)",
                    ">=10x",
                )
            )
            leanest = min(ps, key=lambda r: r.peak_rss_mib)
            out.append(
                Target(
                    names[1],
                    mlw.peak_rss_mib < leanest.peak_rss_mib,
                    f"{mlw.peak_rss_mib:.1f} MiB vs {leanest.tool} {leanest.peak_rss_mib:.1f} MiB",
                    "< min(peers)",
                )
            )
            pk = next((r for r in ps if r.tool == "picklescan"), None)
            if pk is None:
                out.append(Target(names[2], None, "picklescan did not finish", "<= 1/3"))
            else:
                out.append(
                    Target(
                        names[2],
                        mlw.peak_rss_mib * 3 <= pk.peak_rss_mib,
                        f"{mlw.peak_rss_mib:.1f} MiB vs picklescan "
                        f"{pk.peak_rss_mib:.1f} MiB (1/"
                        f"{pk.peak_rss_mib / max(mlw.peak_rss_mib, 1e-9):.1f})",
                        "<= 1/3",
                    )
                )
        out.append(
            Target(
                "dense.pkl: verdict clean",
                bool(mlw and mlw.status == "clean"),
                mlw.status if mlw else "mlward not run",
                "clean",
            )
        )
    if "big.pt" in by_ds:
        mlw = get("big.pt", "mlward")
        why = failed(mlw)
        if why or mlw is None:
            out.append(Target("big.pt: under 0.2 s", False, why or "", "< 0.2 s"))
        else:
            out.append(
                Target(
                    "big.pt: under 0.2 s",
                    mlw.wall_s < 0.2,
                    f"{mlw.wall_s:.3f} s (median of {len(mlw.samples)}), verdict {mlw.status}",
                    "< 0.2 s",
                )
            )
    if "small" in by_ds:
        ps = [r for r in peers("small") if r.files_per_s]
        for label, gating in (("mlward", True), ("mlward --jobs 2", False)):
            mlw = get("small", label)
            name = f"small/: {label} >=3x files/s of the fastest peer"
            why = failed(mlw)
            if why or mlw is None or not mlw.files_per_s:
                out.append(Target(name, False, why or "no time", ">=3x", gating))
            elif not ps:
                out.append(Target(name, None, "no peer finished", ">=3x", gating))
            else:
                fastest = max(ps, key=lambda r: r.files_per_s or 0.0)
                fps = fastest.files_per_s or 1e-9
                ratio = mlw.files_per_s / fps
                out.append(
                    Target(
                        name,
                        ratio >= 3,
                        f"{ratio:.1f}x ({mlw.files_per_s:.1f} vs {fastest.tool} "
                        f"{fps:.1f} files/s), verdict {mlw.status}",
                        ">=3x",
                        gating,
                    )
                )
    return out


# =============================================================================================
# Main
# =============================================================================================


def host_info() -> dict[str, Any]:
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_bytes": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_rev() -> str:
    res = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return res.stdout.strip() if res.returncode == 0 else "uncommitted"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="mlward vs peer scanners benchmark")
    ap.add_argument(
        "--tools",
        nargs="*",
        default=None,
        help="subset of: mlward picklescan modelscan fickling modelaudit",
    )
    ap.add_argument("--datasets", nargs="*", choices=DATASETS, default=list(DATASETS))
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--data", type=Path, default=BENCH / ".data")
    ap.add_argument("--results", type=Path, default=BENCH / "results")
    ap.add_argument(
        "--mlward", type=Path, default=DEV_VENV / "bin" / "mlward", help="mlward CLI to benchmark"
    )
    ap.add_argument(
        "--short",
        type=float,
        default=2.0,
        help="runs faster than this many seconds are repeated ...",
    )
    ap.add_argument("--short-repeats", type=int, default=3, help="... this many times (median)")
    ap.add_argument("--skip-setup", action="store_true", help="do not create/check peer venvs")
    args = ap.parse_args(argv)

    tools = make_tools(args.mlward.absolute())
    if args.tools is not None:
        tools = [t for t in tools if t.package in args.tools]
    dev_python = DEV_VENV / "bin" / "python"
    base_python = subprocess.run(
        [str(dev_python), "-c", "import sys; print(sys._base_executable)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    # 1. environments
    for tool in tools:
        if tool.pin is not None and not args.skip_setup:
            ensure_peer_env(tool, base_python)
    mlward_present = args.mlward.exists() and os.access(args.mlward, os.X_OK)
    if any(t.is_mlward for t in tools) and not mlward_present:
        log(f"mlward CLI not found at {args.mlward}: DRY RUN, peers only; targets not evaluated")
    for tool in tools:
        tool.version = (
            dist_version(tool.python, tool.package)
            if (not tool.is_mlward or mlward_present)
            else "missing"
        )

    # 2. datasets
    log("checking datasets ...")
    subprocess.run(
        [
            str(dev_python),
            str(BENCH / "bench_datasets.py"),
            "--data",
            str(args.data),
            "--only",
            *args.datasets,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    meta: dict[str, Any] = json.loads((args.data / "meta.json").read_text())
    for name in args.datasets:
        info = meta[name]
        log(
            f"dataset {name}: {info['bytes']:,} bytes"
            + (f", {info['files']} files" if "files" in info else "")
            + (
                f", {info['dicts']:,} dicts, {info['opcodes']:,} opcodes"
                if "opcodes" in info
                else ""
            )
        )

    # 3. runs
    work = args.data / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warm_target = next((p for p in sorted((args.data / "small").rglob("*.pt"))), None)
    (work / "warm-home").mkdir()
    for tool in tools:  # untimed warm-up: imports, .pyc files, page cache of the tool itself
        if (tool.is_mlward and not mlward_present) or warm_target is None:
            continue
        measure(
            tool.argv(warm_target),
            tool_env(tool, work / "warm-home"),
            work,
            120,
            work / "warmup" / tool.name.replace(" ", "_"),
        )
    by_ds: dict[str, list[RunResult]] = {}
    for name in args.datasets:
        target = args.data / name
        warm_page_cache(target)
        rows: list[RunResult] = []
        for tool in tools:
            if name not in tool.datasets:
                continue
            argv_ = tool.argv(target)
            if tool.is_mlward and not mlward_present:
                rows.append(
                    RunResult(
                        tool.name,
                        name,
                        argv_,
                        "missing",
                        f"{args.mlward} not found (dry run)",
                        False,
                        None,
                        0.0,
                        0.0,
                        [],
                        {},
                    )
                )
                continue
            log(f"{name}: {tool.name} ...")
            res = run_tool(tool, name, target, args.timeout, work, args.short, args.short_repeats)
            if name == "small" and res.wall_s > 0 and res.status != "timeout":
                res.files_per_s = meta[name]["files"] / res.wall_s
            log(
                f"{name}: {tool.name}: {res.wall_s:.3f} s, {res.peak_rss_mib:.1f} MiB, "
                f"{res.status} (rc={res.rc}) {res.detail[:120]}"
            )
            rows.append(res)
        by_ds[name] = rows

    # 4. report
    for name in args.datasets:
        print_table(name, meta[name], by_ds[name])
    loads = [smp["load1_before"] for rows in by_ds.values() for r in rows for smp in r.samples]
    busiest = max(loads, default=0.0)
    if busiest > 0.5:
        print(
            f"\nwarning: 1-min load average was up to {busiest:.2f} at the start of a run "
            f"({os.cpu_count()} CPUs): other work on this machine makes the times noisy"
        )
    targets = check_targets(by_ds) if mlward_present else []
    print("\n=== targets ===")
    if not mlward_present:
        print("not evaluated: mlward CLI missing (dry run)")
    for t in targets:
        mark = "PASS" if t.ok else ("n/a " if t.ok is None else "FAIL")
        info = "" if t.gating else " (info)"
        print(f"[{mark}] {t.name}{info}: {t.measured} (need {t.required})")

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"scan-{stamp}.json"
    doc = {
        "timestamp": stamp,
        "git": git_rev(),
        "host": host_info(),
        "memory_method": "max(peak of summed RSS over the process tree sampled from /proc every "
        "10 ms, os.wait4 ru_maxrss of the largest single process)",
        "time_method": "wall clock from spawn to reap; runs under --short s repeated, median",
        "dry_run": not mlward_present,
        "tools": {
            t.name: {"version": t.version, "pin": t.pin, "python": str(t.python)} for t in tools
        },
        "env": QUIET_ENV,
        "datasets": {n: meta[n] for n in args.datasets},
        "runs": [asdict(r) for rows in by_ds.values() for r in rows],
        "targets": [asdict(t) for t in targets],
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    missed = [t for t in targets if t.gating and t.ok is False]
    return 1 if missed else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
