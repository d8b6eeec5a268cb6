"""Callable gadgets: functions and classes that run code, spawn processes, write files or import
by name. Each is a small hand-assembled pickle (loader ``pickle``) unless noted.

A denylist of "os/subprocess/builtins.eval" misses most of these: they reach code execution
through debuggers, profilers, shells hidden in stdlib helpers, nested deserializers or code
object construction. ``expected`` is "malicious" where the callable is on mlward's denylist.
"""

from __future__ import annotations

import io
import marshal
import tarfile
import zipfile
from pathlib import Path

from . import Sample
from ._asm import (
    EMPTY_TUPLE,
    REDUCE,
    Ops,
    call,
    glob,
    lit,
    pickle_bytes,
    sglob,
    tup,
)
from ._common import argv, code, exec_payload, raw, shell

M = "malicious"
S = "suspicious"


def _compiled(marker: Path):  # type: ignore[no-untyped-def]
    return compile(code(marker), "<model>", "exec")


def _codetype_args(marker: Path) -> tuple[object, ...]:
    """CodeType constructor arguments (Python 3.11+ field order) for the marker-writing code."""
    c = _compiled(marker)
    return (
        c.co_argcount,
        c.co_posonlyargcount,
        c.co_kwonlyargcount,
        c.co_nlocals,
        c.co_stacksize,
        c.co_flags,
        c.co_code,
        c.co_consts,
        c.co_names,
        c.co_varnames,
        c.co_filename,
        c.co_name,
        c.co_qualname,
        c.co_firstlineno,
        c.co_linetable,
        c.co_exceptiontable,
        c.co_freevars,
        c.co_cellvars,
    )


def _zip_with(marker: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(marker.name, "mlward-payload-ran")
    return buffer.getvalue()


def _tar_with(marker: Path) -> bytes:
    buffer = io.BytesIO()
    data = b"mlward-payload-ran"
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(marker.name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _npy_with_payload(marker: Path) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array([exec_payload(marker), 1], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _torch_zip_with_payload(marker: Path) -> bytes:
    from ._common import torch_zip_bytes

    return torch_zip_bytes({"weights": [1.0, 2.0], "hook": exec_payload(marker)})


def _torch_legacy_with_payload(marker: Path) -> bytes:
    from ._common import torch_legacy_bytes

    return torch_legacy_bytes({"hook": exec_payload(marker)})


def _inner_pickle(marker: Path) -> bytes:
    return pickle_bytes(call(glob("os", "system"), shell(marker)), 2)


def _partial_with_kwargs(func: Ops, args: tuple[object, ...], kwargs: dict[str, object]) -> Ops:
    """functools.partial(func, *args, **kwargs)() with the kwargs set through BUILD "
    "(__setstate__)."""
    partial = call(glob("functools", "partial"), func)
    state = tup(func, tup(*args), lit(kwargs), None)
    return partial + state + Ops(b"b") + EMPTY_TUPLE + REDUCE


def _cloudpickle_function(out_dir: Path, marker: Path) -> Path:
    import cloudpickle

    from ._common import Reduce

    namespace: dict[str, object] = {"__name__": "mlward_dynamic_payload"}
    exec(f"def payload():\n    {code(marker)}\n", namespace)
    path = out_dir / "gadget-cloudpickle-function.pkl"
    path.write_bytes(cloudpickle.dumps(Reduce(namespace["payload"])))  # type: ignore[arg-type]
    return path


def _dill_function(out_dir: Path, marker: Path) -> Path:
    # Built in a subprocess: importing dill patches pickle's pure-Python Pickler for the whole
    # process, after which every joblib.dump there emits dill types (benign files included).
    import subprocess
    import sys

    path = out_dir / "gadget-dill-function.pkl"
    script = (
        "import dill, sys\n"
        "class Reduce:\n"
        "    def __init__(self, f): self.f = f\n"
        "    def __reduce__(self): return (self.f, ())\n"
        "ns = {'__name__': 'mlward_dynamic_payload'}\n"
        f"exec({f'def payload():{chr(10)}    {code(marker)}{chr(10)}'!r}, ns)\n"
        "open(sys.argv[1], 'wb').write(dill.dumps(Reduce(ns['payload']), recurse=True))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    return path


def _string_module_file() -> str:
    import string

    return str(string.__file__)


SAMPLES: list[Sample] = [
    # ---------------------------------------------------------------- builtins and introspection
    raw(
        "gadget-builtins-exec",
        "builtins.exec on a source string: the textbook payload.",
        lambda m: call(glob("builtins", "exec"), code(m)),
        M,
    ),
    raw(
        "gadget-builtins-eval",
        "builtins.eval of an expression that writes a file.",
        lambda m: call(glob("builtins", "eval"), code(m)),
        M,
    ),
    raw(
        "gadget-builtins-compile-exec",
        "builtins.compile builds a code object that builtins.exec then runs; scanners that only "
        "look at string arguments of exec see a code object instead.",
        lambda m: call(
            glob("builtins", "exec"), call(glob("builtins", "compile"), code(m), "<model>", "exec")
        ),
        M,
    ),
    raw(
        "gadget-builtins-open-write",
        "builtins.open(path, 'w') creates or truncates any file without any code execution.",
        lambda m: call(glob("builtins", "open"), str(m), "w"),
        M,
    ),
    raw(
        "gadget-builtins-import-getattr",
        "builtins.__import__('os') then builtins.getattr(module, 'system'): os.system is reached "
        "without any GLOBAL naming os.",
        lambda m: call(
            call(glob("builtins", "getattr"), call(glob("builtins", "__import__"), "os"), "system"),
            shell(m),
        ),
        M,
        advisory="GHSA-h4rm-mm56-xf63",
    ),
    raw(
        "gadget-builtins-dict-get-exec",
        "STACK_GLOBAL builtins.__dict__ is the builtins namespace; dict.get(ns, 'exec') returns "
        "exec, "
        "so the name 'exec' only ever appears as a string argument.",
        lambda m: call(
            call(sglob("builtins", "dict.get"), sglob("builtins", "__dict__"), "exec"), code(m)
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-sys-modules-methodcaller",
        "sys.modules['os'] via dict.get, then operator.methodcaller('system', cmd) applied to it: "
        "no import of os appears.",
        lambda m: call(
            call(glob("operator", "methodcaller"), "system", shell(m)),
            call(sglob("builtins", "dict.get"), sglob("sys", "modules"), "os"),
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-vars-itemgetter",
        "operator.itemgetter('system') applied to builtins.vars(__import__('os')).",
        lambda m: call(
            call(
                call(glob("operator", "itemgetter"), "system"),
                call(glob("builtins", "vars"), call(glob("builtins", "__import__"), "os")),
            ),
            shell(m),
        ),
        M,
    ),
    raw(
        "gadget-main-builtins-exec",
        "Protocol-4 dotted name '__main__' / '__builtins__.exec': find_class walks from the "
        "victim's __main__ module to builtins.exec; the module named is __main__, not builtins.",
        lambda m: call(sglob("__main__", "__builtins__.exec"), code(m)),
        M,
        proto=4,
    ),
    raw(
        "gadget-map-list-lazy-call",
        "builtins.map(os.system, [cmd]) is lazy; builtins.list consumes it, so os.system is called "
        "from inside list() and never by a REDUCE of its own.",
        lambda m: call(
            glob("builtins", "list"),
            call(glob("builtins", "map"), glob("os", "system"), [shell(m)]),
        ),
        M,
    ),
    # ---------------------------------------------------------------- processes
    raw(
        "gadget-os-system",
        "os.system on a shell command.",
        lambda m: call(glob("os", "system"), shell(m)),
        M,
    ),
    raw(
        "gadget-posix-system",
        "posix.system: the real module behind os on Linux (what pickle writes for os.system).",
        lambda m: call(glob("posix", "system"), shell(m)),
        M,
    ),
    raw(
        "gadget-os-popen",
        "os.popen runs a shell command.",
        lambda m: call(glob("os", "popen"), shell(m)),
        M,
    ),
    raw(
        "gadget-os-execv",
        "os.execv replaces the loading process with /bin/sh.",
        lambda m: call(glob("os", "execv"), "/bin/sh", argv(m)),
        M,
    ),
    raw(
        "gadget-os-spawnv",
        "os.spawnv(P_WAIT, '/bin/sh', argv) starts and waits for a child.",
        lambda m: call(glob("os", "spawnv"), 0, "/bin/sh", argv(m)),
        M,
    ),
    raw(
        "gadget-os-spawnlp",
        "os.spawnlp with a PATH lookup and varargs.",
        lambda m: call(glob("os", "spawnlp"), 0, "sh", "sh", "-c", shell(m)),
        M,
    ),
    raw(
        "gadget-posix-spawn",
        "posix.posix_spawn: process creation without subprocess or os.system.",
        lambda m: call(glob("posix", "posix_spawn"), "/bin/sh", argv(m), {}),
        M,
    ),
    raw(
        "gadget-subprocess-popen",
        "subprocess.Popen with an argv list.",
        lambda m: call(glob("subprocess", "Popen"), argv(m)),
        M,
    ),
    raw(
        "gadget-subprocess-run",
        "subprocess.run with an argv list.",
        lambda m: call(glob("subprocess", "run"), argv(m)),
        M,
    ),
    raw(
        "gadget-subprocess-getoutput",
        "subprocess.getoutput runs a shell command.",
        lambda m: call(glob("subprocess", "getoutput"), shell(m)),
        M,
    ),
    raw(
        "gadget-py2-commands-getoutput",
        "Protocol-2 GLOBAL 'commands getoutput': Python 2's module name, which the unpickler maps "
        "to "
        "subprocess.getoutput (fix_imports); a denylist of Python 3 names misses it.",
        lambda m: call(glob("commands", "getoutput"), shell(m)),
        M,
    ),
    raw(
        "gadget-bootsubprocess-popen-wait",
        "_bootsubprocess.Popen(argv).wait(): CPython's bootstrap subprocess replacement forks and "
        "execs.",
        lambda m: call(
            sglob("_bootsubprocess", "Popen.wait"), call(sglob("_bootsubprocess", "Popen"), argv(m))
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-multiprocessing-spawnv-passfds",
        "multiprocessing.util.spawnv_passfds forks and execs through _posixsubprocess.",
        lambda m: call(
            glob("multiprocessing.util", "spawnv_passfds"),
            b"/bin/sh",
            [a.encode() for a in argv(m)],
            (),
        ),
        M,
        advisory="GHSA-q5qq-mvfm-j35x",
    ),
    raw(
        "gadget-pty-spawn",
        "pty.spawn runs a program on a pseudo-terminal.",
        lambda m: call(glob("pty", "spawn"), argv(m)),
        M,
        advisory="GHSA-vqmv-47xg-9wpr",
    ),
    raw(
        "gadget-pydoc-pipepager",
        "pydoc.pipepager(text, cmd) pipes text into a shell command.",
        lambda m: call(glob("pydoc", "pipepager"), "ignored", shell(m)),
        M,
    ),
    raw(
        "gadget-mailcap-findmatch",
        "mailcap.findmatch runs an entry's 'test' command with os.system.",
        lambda m: call(
            glob("mailcap", "findmatch"),
            {"text/plain": [{"view": "true", "test": shell(m)}]},
            "text/plain",
        ),
        M,
        advisory="https://github.com/protectai/modelscan/pull/346",
    ),
    raw(
        "gadget-pipes-template-copy",
        "pipes.Template().copy(infile, outfile) builds a shell pipeline and runs it with "
        "os.system.",
        lambda m: call(
            sglob("pipes", "Template.copy"), call(sglob("pipes", "Template")), "/dev/null", str(m)
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-distutils-spawn",
        "distutils.spawn.spawn(argv) (setuptools' vendored distutils when installed).",
        lambda m: call(sglob("distutils.spawn", "spawn"), argv(m)),
        M,
        proto=4,
    ),
    raw(
        "gadget-pip-call-subprocess",
        "pip._internal.utils.subprocess.call_subprocess needs a keyword-only argument; a "
        "functools.partial gets it through BUILD (__setstate__ with kwargs), then is called.",
        lambda m: _partial_with_kwargs(
            glob("pip._internal.utils.subprocess", "call_subprocess"),
            (argv(m),),
            {"command_desc": "mlward"},
        ),
        M,
    ),
    raw(
        "gadget-copyreg-reconstructor-popen",
        "copy_reg._reconstructor(Popen, Popen, argv) calls Popen.__init__(obj, argv); the py2 "
        "module "
        "name copy_reg is mapped to copyreg, and Popen is only passed as an argument.",
        lambda m: call(
            glob("copy_reg", "_reconstructor"),
            glob("subprocess", "Popen"),
            glob("subprocess", "Popen"),
            argv(m),
        ),
        M,
    ),
    raw(
        "gadget-threading-thread-start",
        "threading.Thread(target=exec, args=(src,)).start(): the payload runs on another thread.",
        lambda m: call(
            sglob("threading", "Thread.start"),
            call(sglob("threading", "Thread"), None, sglob("builtins", "exec"), None, (code(m),)),
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-atexit-register",
        "atexit.register(os.system, cmd): nothing runs during the load; the payload fires when "
        "the victim's interpreter exits.",
        lambda m: call(glob("atexit", "register"), glob("os", "system"), shell(m)),
        M,
    ),
    # ---------------------------------------------------------------- code execution helpers
    raw(
        "gadget-runpy-run-code",
        "runpy._run_code(src, globals) is exec under another name.",
        lambda m: call(glob("runpy", "_run_code"), code(m), {}),
        M,
    ),
    raw(
        "gadget-code-interactiveinterpreter-runsource",
        "code.InteractiveInterpreter().runsource(src): the REPL machinery compiles and runs "
        "source.",
        lambda m: call(
            sglob("code", "InteractiveInterpreter.runsource"),
            call(sglob("code", "InteractiveInterpreter")),
            code(m),
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-timeit-setup",
        "timeit.timeit('pass', setup=src): the payload is the setup statement.",
        lambda m: call(glob("timeit", "timeit"), "pass", code(m)),
        M,
    ),
    raw(
        "gadget-bdb-run",
        "bdb.Bdb.run(Bdb(), src): the debugger base class execs source without stopping.",
        lambda m: call(sglob("bdb", "Bdb.run"), call(sglob("bdb", "Bdb")), code(m)),
        M,
        proto=4,
    ),
    raw(
        "gadget-pdb-run-scripted",
        "pdb.Pdb with a scripted stdin ('continue') runs source under the debugger without a tty.",
        lambda m: call(
            sglob("pdb", "Pdb.run"),
            call(
                sglob("pdb", "Pdb"),
                "tab",
                call(sglob("io", "StringIO"), "continue\n"),
                call(sglob("io", "StringIO")),
            ),
            code(m),
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-pydoc-locate",
        "pydoc.locate('os.system') imports by dotted string; the result is then called.",
        lambda m: call(call(glob("pydoc", "locate"), "os.system"), shell(m)),
        M,
        advisory="GHSA-5hvc-6wx8-mvv4",
    ),
    raw(
        "gadget-importlib-attrgetter",
        "operator.attrgetter('system')(importlib.import_module('os')).",
        lambda m: call(
            call(
                call(glob("operator", "attrgetter"), "system"),
                call(glob("importlib", "import_module"), "os"),
            ),
            shell(m),
        ),
        M,
        advisory="https://github.com/mmaitre314/picklescan/issues/66",
    ),
    raw(
        "gadget-operator-methodcaller-import",
        "operator.methodcaller('system', cmd)(builtins.__import__('os')).",
        lambda m: call(
            call(glob("operator", "methodcaller"), "system", shell(m)),
            call(glob("builtins", "__import__"), "os"),
        ),
        M,
    ),
    raw(
        "gadget-functools-partial",
        "functools.partial(os.system, cmd) is built, then called with no arguments.",
        lambda m: call(call(glob("functools", "partial"), glob("os", "system"), shell(m))),
        M,
    ),
    raw(
        "gadget-functools-partial-kwargs",
        "functools.partial(subprocess.run) whose args and kwargs (shell=True) arrive through "
        "BUILD, "
        "so no REDUCE argument list shows the command.",
        lambda m: _partial_with_kwargs(glob("subprocess", "run"), (shell(m),), {"shell": True}),
        M,
    ),
    raw(
        "gadget-py2-builtin-reduce",
        "Protocol-2 GLOBAL '__builtin__ reduce' maps to functools.reduce; reduce(exec, [src, {}]) "
        "calls exec(src, {}).",
        lambda m: call(glob("__builtin__", "reduce"), glob("__builtin__", "exec"), [code(m), {}]),
        M,
    ),
    raw(
        "gadget-types-functiontype-marshal",
        "types.FunctionType(marshal.loads(bytecode), {})(): arbitrary bytecode, no source string.",
        lambda m: call(
            call(
                glob("types", "FunctionType"),
                call(glob("marshal", "loads"), marshal.dumps(_compiled(m))),
                {},
            )
        ),
        M,
        advisory="GHSA-565g-hwwr-4pp3",
    ),
    raw(
        "gadget-types-codetype-functiontype",
        "types.CodeType(*fields) builds bytecode from plain literals; FunctionType wraps and "
        "calls it.",
        lambda m: call(
            call(
                glob("types", "FunctionType"),
                call(glob("types", "CodeType"), *_codetype_args(m)),
                {},
            )
        ),
        M,
    ),
    raw(
        "gadget-ctypes-libc-system",
        "ctypes.CDLL(None)['system'](cmd): libc's system() through the FFI, via CDLL.__getitem__.",
        lambda m: call(
            call(
                sglob("ctypes", "CDLL.__getitem__"), call(sglob("ctypes", "CDLL"), None), "system"
            ),
            shell(m).encode(),
        ),
        M,
        proto=4,
        advisory="GHSA-4675-36f9-wf6r",
    ),
    raw(
        "gadget-torch-fx-exec-with-source",
        "torch.fx.graph_module._exec_with_source(src, globals) compiles and execs generated code.",
        lambda m: call(sglob("torch.fx.graph_module", "_exec_with_source"), code(m), {}),
        M,
        proto=4,
    ),
    raw(
        "gadget-xxsubinterpreters-run-string",
        "_xxsubinterpreters.create() then run_string(id, src): source runs in a subinterpreter.",
        lambda m: call(
            glob("_xxsubinterpreters", "run_string"),
            call(glob("_xxsubinterpreters", "create")),
            code(m),
        ),
        M,
        advisory="GHSA-6ggj-6f2q-f7mx",
    ),
    # ---------------------------------------------------------------- files
    raw(
        "gadget-shutil-copyfile",
        "shutil.copyfile('/dev/null', path) creates or truncates any file.",
        lambda m: call(glob("shutil", "copyfile"), "/dev/null", str(m)),
        M,
    ),
    raw(
        "gadget-pathlib-write-text",
        "pathlib.Path.write_text(PosixPath(path), text): an arbitrary file write through a method.",
        lambda m: call(
            sglob("pathlib", "Path.write_text"), call(sglob("pathlib", "PosixPath"), str(m)), "x"
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-zipfile-extractall",
        "zipfile.ZipFile(BytesIO(zip)).extractall(dir) drops files carried inside the pickle.",
        lambda m: call(
            sglob("zipfile", "ZipFile.extractall"),
            call(sglob("zipfile", "ZipFile"), call(sglob("io", "BytesIO"), _zip_with(m))),
            str(m.parent),
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-tarfile-extractall",
        "tarfile.TarFile(fileobj=BytesIO(tar)).extractall(dir) drops files carried inside the "
        "pickle.",
        lambda m: call(
            sglob("tarfile", "TarFile.extractall"),
            call(
                sglob("tarfile", "TarFile"), None, "r", call(sglob("io", "BytesIO"), _tar_with(m))
            ),
            str(m.parent),
        ),
        M,
        proto=4,
    ),
    raw(
        "gadget-setuptools-distutils-write-file",
        "setuptools._distutils.file_util.write_file: the same write_file under a vendored module "
        "path.",
        lambda m: call(sglob("setuptools._distutils.file_util", "write_file"), str(m), ["x"]),
        M,
        proto=4,
    ),
    raw(
        "gadget-py-compile-cfile",
        "py_compile.compile(stdlib_source, cfile=path) writes a .pyc to any path.",
        lambda m: call(glob("py_compile", "compile"), _string_module_file(), str(m)),
        M,
    ),
    raw(
        "gadget-sqlite3-connect",
        "sqlite3.connect(path) creates a database file at any path.",
        lambda m: call(glob("sqlite3", "connect"), str(m)),
        M,
    ),
    raw(
        "gadget-venv-create",
        "venv.create(path, symlinks=True) creates a whole environment directory.",
        lambda m: call(glob("venv", "create"), str(m), False, False, True),
        M,
    ),
    # ---------------------------------------------------------------- nested deserializers
    raw(
        "gadget-pickle-loads-nested",
        "pickle.loads(bytes): the real payload is a second pickle hidden in a BINBYTES argument.",
        lambda m: call(glob("pickle", "loads"), _inner_pickle(m)),
        M,
    ),
    raw(
        "gadget-c-pickle-loads-nested",
        "_pickle.loads(bytes): the C module name for the nested loader.",
        lambda m: call(glob("_pickle", "loads"), _inner_pickle(m)),
        M,
    ),
    raw(
        "gadget-pickle-pure-loads-nested",
        "pickle._loads(bytes): the pure-Python unpickler entry point.",
        lambda m: call(glob("pickle", "_loads"), _inner_pickle(m)),
        M,
    ),
    raw(
        "gadget-numpy-load-nested",
        "numpy.load(BytesIO(npy), None, True): an object-dtype .npy carried in the pickle is "
        "loaded "
        "with allow_pickle passed positionally.",
        lambda m: call(
            glob("numpy", "load"), call(glob("io", "BytesIO"), _npy_with_payload(m)), None, True
        ),
        M,
    ),
    raw(
        "gadget-torch-load-nested",
        "torch.load(BytesIO(zip), None, pickle): passing pickle_module positionally turns "
        "weights_only off, so the nested checkpoint's payload runs.",
        lambda m: call(
            glob("torch", "load"),
            call(glob("io", "BytesIO"), _torch_zip_with_payload(m)),
            None,
            glob("torch.serialization", "pickle"),
        ),
        M,
    ),
    raw(
        "gadget-torch-load-from-bytes-nested",
        "torch.storage._load_from_bytes(bytes) is how old checkpoints store storages; it calls "
        "torch.load(weights_only=False) on nested bytes that carry the payload. The global itself "
        "is benign-looking: the nested bytes must be scanned.",
        lambda m: call(glob("torch.storage", "_load_from_bytes"), _torch_legacy_with_payload(m)),
        M,
    ),
    Sample(
        "gadget-cloudpickle-function",
        "cloudpickle serialises a function by value (code object via _builtin_type / "
        "_make_function) and the pickle calls it with REDUCE.",
        _cloudpickle_function,
        "pickle",
        M,
        "GHSA-9m3x-qqw2-h32h",
    ),
]

# dill is a test dependency; its sample is built in a subprocess (see _dill_function).
SAMPLES.append(
    Sample(
        "gadget-dill-function",
        "dill serialises a function by value (dill._dill._create_code / _create_function) and "
        "the pickle calls it.",
        _dill_function,
        "pickle",
        M,
    )
)
