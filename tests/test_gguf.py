"""GGUF: header validation and chat-template checks, on files written with the gguf package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlward import Verdict, scan

BENIGN_TEMPLATE = (
    "{%- set ns = namespace(found=false) -%}{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{%- set ns.found = true -%}{%- endif -%}"
    "<|start_header_id|>{{ m['role'] }}<|end_header_id|>{{ m['content'] | trim }}<|eot_id|>"
    "{%- endfor -%}{%- if add_generation_prompt -%}<|start_header_id|>assistant{%- endif -%}"
)


def _write(path: Path, template: str | None, named: dict[str, str] | None = None) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    if template is not None:
        writer.add_chat_template(template)
    for name, text in (named or {}).items():
        writer.add_string(f"tokenizer.chat_template.{name}", text)
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "hello"])
    writer.add_tensor("w", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    "template", [None, BENIGN_TEMPLATE, "{% for m in messages %}{{ m.content }}{% endfor %}"]
)
def test_benign_gguf_is_clean(tmp_path: Path, template: str | None) -> None:
    art = scan([_write(tmp_path / "m.gguf", template, {"tool_use": BENIGN_TEMPLATE})]).artifacts[0]
    assert art.formats == ("gguf",)
    assert art.verdict is Verdict.CLEAN, [f.message for f in art.findings]


@pytest.mark.parametrize(
    "template",
    [
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ ''|attr('__cla' ~ 'ss__') }}",
        "{{ joiner['__init__']['__globals__'] }}",
        "{% include 'other' %}",
        "{{ self.__TemplateReference__context }}",
    ],
)
def test_template_gadgets_are_flagged(tmp_path: Path, template: str) -> None:
    art = scan([_write(tmp_path / "m.gguf", template)]).artifacts[0]
    assert art.verdict is Verdict.MALICIOUS
    assert any(f.rule_id == "MW991" for f in art.findings)


def test_named_templates_are_checked_too(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.gguf", BENIGN_TEMPLATE, {"rag": "{{ cycler.__init__ }}"})
    finding = next(f for f in scan([path]).artifacts[0].findings if f.rule_id == "MW991")
    assert finding.evidence["key"] == "tokenizer.chat_template.rag"


def test_the_gadget_really_runs_in_an_unsandboxed_renderer(tmp_path: Path) -> None:
    """What a runtime rendering with a plain jinja2.Environment (as llama-cpp-python did before
    its CVE-2024-34359 fix) executes: here, a harmless marker file."""
    marker = tmp_path / "marker"
    template = (
        "{{ cycler.__init__.__globals__.__builtins__.open("
        + repr(str(marker))
        + ", 'w').write('ran') }}"
    )
    path = _write(tmp_path / "m.gguf", template)
    assert scan([path]).artifacts[0].verdict is Verdict.MALICIOUS
    assert not marker.exists()
    render = (
        "import sys, gguf, jinja2\n"
        "r = gguf.GGUFReader(sys.argv[1])\n"
        "f = r.fields['tokenizer.chat_template']\n"
        "t = bytes(f.parts[f.data[0]]).decode()\n"
        "jinja2.Environment().from_string(t).render(messages=[])\n"
    )
    subprocess.run([sys.executable, "-c", render, str(path)], check=True, timeout=60)
    assert marker.exists()


def test_malformed_headers_are_flagged(tmp_path: Path) -> None:
    data = _write(tmp_path / "m.gguf", BENIGN_TEMPLATE).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:60])
    assert scan([cut]).artifacts[0].verdict is Verdict.SUSPICIOUS
    huge = tmp_path / "huge.gguf"
    huge.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (2**60).to_bytes(8, "little") * 2)
    art = scan([huge]).artifacts[0]
    assert art.verdict is Verdict.SUSPICIOUS
    assert any(f.rule_id == "MW990" for f in art.findings)
