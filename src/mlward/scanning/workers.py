"""Scan many files on several cores: forked workers and the calling process share one queue.

A pool of fresh worker processes costs more than scanning a thousand small files takes, so this
forks (workers inherit the imported code and the parsed allowlists), lets the calling process
scan too, and hands out batches through a pipe: each batch number is a 4-byte write, and reads
of at most PIPE_BUF bytes are atomic, so every batch goes to exactly one process. Results come
back pickled over one pipe per worker. A batch whose worker died is scanned again here, so no
file is ever dropped from a report.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlward.results import ArtifactResult
    from mlward.scanning.engine import Scanner

Progress = Callable[[int, int, str], None]

_MAX_BATCHES = 8192  # 4 bytes each: the whole queue fits in a pipe's 64 KiB buffer
_FRAME = struct.Struct("<Q")


def can_fork() -> bool:
    return hasattr(os, "fork")


def scan_parallel(
    scanner: Scanner, files: Sequence[str], jobs: int, progress: Progress | None
) -> list[ArtifactResult]:
    """Results in the order of ``files``, scanned by ``jobs`` processes (this one included)."""
    # Small batches keep the last ones short, so no process waits long for another at the end.
    size = max(1, min(16, len(files) // (jobs * 8)), -(-len(files) // _MAX_BATCHES))
    batches = [files[start : start + size] for start in range(0, len(files), size)]
    results: list[list[ArtifactResult] | None] = [None] * len(batches)
    done = 0

    def finished(index: int, batch_results: list[ArtifactResult]) -> None:
        nonlocal done
        if results[index] is None:
            results[index] = batch_results
            done += len(batch_results)
            if progress is not None and batch_results:
                progress(done, len(files), batch_results[-1].path)

    queue_read, queue_write = os.pipe()
    os.write(queue_write, b"".join(i.to_bytes(4, "little") for i in range(len(batches))))
    workers: dict[int, _Worker] = {}
    try:
        # Frozen objects are never visited by the collector, so workers do not copy the pages
        # of everything this process has imported just to walk them.
        gc.freeze()
        try:
            for _ in range(jobs - 1):
                worker = _fork_worker(scanner, batches, queue_read, queue_write)
                workers[worker.pid] = worker
        finally:
            gc.unfreeze()
        os.close(queue_write)
        queue_write = -1
        while (claimed := os.read(queue_read, 4)) != b"":
            index = int.from_bytes(claimed, "little")
            finished(index, [scanner.scan_path(path) for path in batches[index]])
            for worker in workers.values():
                for frame in worker.receive(block=False):
                    finished(*frame)
        for worker in workers.values():
            for frame in worker.receive(block=True):
                finished(*frame)
            worker.reap()
    finally:
        if queue_write >= 0:
            os.close(queue_write)
        os.close(queue_read)
        for worker in workers.values():
            worker.stop()
    # A worker that died took its claimed batches with it; scan them here.
    for index, batch in enumerate(batches):
        if results[index] is None:
            finished(index, [scanner.scan_path(path) for path in batch])
    return [result for batch_results in results if batch_results for result in batch_results]


class _Worker:
    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd  # -1 once the worker has closed its end and everything was read
        self.buffer = bytearray()
        self.running = True

    def receive(self, *, block: bool) -> list[tuple[int, list[ArtifactResult]]]:
        """Complete frames sent so far; with ``block``, every frame until the worker is done."""
        while self.fd >= 0:
            if not block and not select.select([self.fd], [], [], 0)[0]:
                break
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                os.close(self.fd)
                self.fd = -1
                break
            self.buffer += chunk
        frames: list[tuple[int, list[ArtifactResult]]] = []
        while len(self.buffer) >= _FRAME.size:
            (length,) = _FRAME.unpack_from(self.buffer)
            if len(self.buffer) < _FRAME.size + length:
                break
            payload = bytes(self.buffer[_FRAME.size : _FRAME.size + length])
            del self.buffer[: _FRAME.size + length]
            frames.append(pickle.loads(payload))  # our own worker's results, not input
        return frames

    def reap(self) -> None:
        os.waitpid(self.pid, 0)
        self.running = False

    def stop(self) -> None:
        """Release the worker however the scan ended (an interrupt included)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.running = False


def _fork_worker(
    scanner: Scanner, batches: list[Sequence[str]], queue_read: int, queue_write: int
) -> _Worker:
    result_read, result_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            os.close(queue_write)
            os.close(result_read)
            while (claimed := os.read(queue_read, 4)) != b"":
                index = int.from_bytes(claimed, "little")
                batch_results = [scanner.scan_path(path) for path in batches[index]]
                payload = pickle.dumps((index, batch_results), protocol=pickle.HIGHEST_PROTOCOL)
                _write_all(result_write, _FRAME.pack(len(payload)) + payload)
            code = 0
        finally:
            os._exit(code)
    os.close(result_write)
    return _Worker(pid, result_read)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
