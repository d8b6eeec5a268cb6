"""Stream tricks: where in the byte stream the payload sits and what surrounds it.

The victim (loader ``pickle``) reads pickles until the stream ends, like code that stores several
objects in one file. Scanners that read only the first pickle, give up on junk after STOP, or
report a parse error instead of the payload that came before it, miss these.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from . import Sample
from ._asm import REDUCE, Ops, call, glob, pickle_bytes, text, tup
from ._common import code, exec_payload, raw, shell

M = "malicious"


def _payload_pickle(marker: Path) -> bytes:
    return pickle.dumps(exec_payload(marker), protocol=4)


def _benign(index: int) -> bytes:
    return pickle.dumps({"epoch": index, "loss": 0.5 / (index + 1), "tags": ["a", "b"]}, protocol=4)


def _text_pickle(marker: Path) -> bytes:
    # Protocol 0 is plain ASCII text: looks like a config or log file.
    return bytes(glob("os", "system") + Ops(b"(") + text(shell(marker)) + Ops(b"tR."))


def _after_junk(marker: Path) -> bytes:
    return _payload_pickle(marker) + os.urandom(64) + b"\x00\xff" * 32


def _six_benign_then_payload(marker: Path) -> bytes:
    return b"".join(_benign(i) for i in range(6)) + _payload_pickle(marker)


def _benign_first(marker: Path) -> bytes:
    return _benign(0) + _payload_pickle(marker)


def _benign_twice(marker: Path) -> bytes:
    return _benign(0) + _benign(1) + _payload_pickle(marker) + _benign(2)


def _invalid_opcode_after(marker: Path) -> bytes:
    # The payload's REDUCE runs, then the unpickler hits 0xff and raises.
    return b"\x80\x02" + bytes(call(glob("builtins", "exec"), code(marker))) + b"\xff" + b"garbage"


def _truncated_after(marker: Path) -> bytes:
    # No STOP: the loader runs the payload and then reports truncated data.
    return (
        b"\x80\x02" + bytes(call(glob("builtins", "exec"), code(marker))) + b"X\x10\x00\x00\x00abc"
    )


def _broken_text_model(marker: Path) -> bytes:
    # Like picklescan's broken_model.pkl: exec then an unterminated BINUNICODE.
    return bytes(glob("builtins", "exec") + Ops(b"(") + text(code(marker)) + Ops(b"tRX"))


def _duplicate_memo_reuse(marker: Path) -> bytes:
    # Two pickles; the second reuses memo indices the first defined (each load has a fresh memo,
    # so a scanner that shares the memo across pickles resolves the wrong names).
    first = (
        b"\x80\x04"
        + bytes(Ops(b"\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94"))
        + b"."
    )
    second = (
        b"\x80\x04"
        + bytes(
            Ops(b"\x8c\x02os\x94\x8c\x06system\x94")
            + Ops(b"h\x00h\x01\x93")
            + tup(shell(marker))
            + REDUCE
        )
        + b"."
    )
    return first + second


SAMPLES: list[Sample] = [
    raw(
        "stream-payload-in-second-pickle",
        "A benign pickle followed by a second pickle that carries the payload.",
        _benign_first,
        M,
        complete=True,
    ),
    raw(
        "stream-payload-in-third-pickle",
        "Two benign pickles, the payload third, another benign pickle after it.",
        _benign_twice,
        M,
        complete=True,
    ),
    raw(
        "stream-payload-after-six-pickles",
        "Six benign pickles before the payload: a scanner that stops after five pickles misses it.",
        _six_benign_then_payload,
        M,
        complete=True,
    ),
    raw(
        "stream-second-pickle-fresh-memo",
        "The second pickle BINGETs memo slots 0/1 that only the first pickle defined with benign "
        "names; its own MEMOIZE put 'os'/'system' there (every load has a fresh memo).",
        _duplicate_memo_reuse,
        M,
        complete=True,
    ),
    raw(
        "stream-junk-after-stop",
        "A payload pickle followed by random bytes; the junk makes whole-file parsers fail.",
        _after_junk,
        M,
        complete=True,
    ),
    raw(
        "stream-invalid-opcode-after-reduce",
        "An invalid opcode (0xff) right after the payload's REDUCE: the loader has already run the "
        "payload when it raises, while a parse-first scanner reports only a parse error.",
        _invalid_opcode_after,
        M,
        complete=True,
    ),
    raw(
        "stream-truncated-after-reduce",
        "The stream ends inside a BINUNICODE after the payload's REDUCE, with no STOP.",
        _truncated_after,
        M,
        complete=True,
    ),
    raw(
        "stream-broken-text-pickle",
        "Protocol-0 exec(...) followed by a dangling BINUNICODE opcode.",
        _broken_text_model,
        M,
        complete=True,
    ),
    raw(
        "stream-text-pickle-as-txt",
        "A protocol-0 (pure ASCII) pickle saved as notes.txt.",
        _text_pickle,
        M,
        complete=True,
        ext=".txt",
    ),
    raw(
        "stream-text-pickle-as-json",
        "A protocol-0 (pure ASCII) pickle saved as config.json.",
        _text_pickle,
        M,
        complete=True,
        ext=".json",
    ),
    raw(
        "stream-text-pickle-as-bin",
        "A protocol-0 (pure ASCII) pickle saved as weights.bin.",
        _text_pickle,
        M,
        complete=True,
        ext=".bin",
    ),
    raw(
        "stream-payload-pickle-py-loader",
        "A payload loaded by the pure-Python pickle._Unpickler (the path joblib uses); hooks "
        "placed "
        "only on the C unpickler miss it.",
        lambda m: pickle_bytes(call(glob("os", "system"), shell(m)), 2),
        M,
        complete=True,
        loader="pickle-py",
        advisory="GHSA-fphw-536r-4p88",
    ),
]
