"""The VS Code extension (editors/vscode): its node checks run here as real subprocesses
(tsc and the client's unit tests, the grammar's assertion and snapshot tests, packaging
the .vsix, the highlighted HTML of the screenshot), and the declarative parts checked
against the language itself."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from sglc.frontend import parse_source
from sglc.frontend.build import KEYWORDS
from sglc.frontend.typeexpr import TYPE_NAMES
from sglc.lang import BUILTINS, GEN_PARAMS

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((EXT / "syntaxes" / "sgl.tmLanguage.json").read_text())

needs_node = pytest.mark.skipif(
    not (shutil.which("node") and shutil.which("npm") and (EXT / "node_modules").is_dir()),
    reason="node, npm or editors/vscode/node_modules missing (run `npm ci` in editors/vscode)")


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(["npm", "run", "--silent", *args], cwd=EXT, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@needs_node
def test_the_client_compiles_and_its_unit_tests_pass() -> None:
    npm("compile")
    out = npm("test:unit").stdout
    assert re.search(r"^# pass [1-9]", out, re.M) and re.search(r"^# fail 0$", out, re.M), out


@needs_node
def test_grammar_assertions() -> None:
    out = npm("test:grammar").stdout
    cases = sorted(p.name for p in (EXT / "test" / "grammar").glob("*.test.sgl"))
    assert len(cases) >= 2
    for case in cases:
        assert f"{case} run successfuly" in out, out  # sic: the tool's spelling


@needs_node
def test_grammar_snapshots_of_every_example() -> None:
    out = npm("test:snap").stdout
    for example in sorted((ROOT / "examples").glob("*.sgl")):
        assert (EXT / "test" / "snap" / f"{example.name}.snap").is_file(), \
            f"no snapshot for {example.name}: run vscode-tmgrammar-snap -u (see the README)"
        assert f"{example.name} run successfully" in out, out


@needs_node
def test_the_extension_packages_to_a_vsix(tmp_path: Path) -> None:
    vsix = tmp_path / "sgl.vsix"
    npm("package", "--", "--out", str(vsix))
    names = set(zipfile.ZipFile(vsix).namelist())
    for part in ("package.json", "syntaxes/sgl.tmLanguage.json", "language-configuration.json",
                 "snippets/sgl.json", "out/extension.js", "out/server.js",
                 "images/highlighting.png", "node_modules/vscode-languageclient/package.json"):
        assert f"extension/{part}" in names, part
    assert not any(n.startswith(("extension/src/", "extension/test/", "extension/scripts/",
                                 "extension/node_modules/typescript/")) for n in names)
    manifest = json.loads(zipfile.ZipFile(vsix).read("extension/package.json"))
    assert manifest["contributes"]["languages"][0]["extensions"] == [".sgl"]


@needs_node
def test_the_screenshot_page_is_highlighted(tmp_path: Path) -> None:
    html = tmp_path / "agent.html"
    subprocess.run(["node", "scripts/render.mjs", str(ROOT / "examples" / "agent.sgl"),
                    str(html)], cwd=EXT, check=True, timeout=120)
    page = html.read_text()
    for coloured in ('<span style="color:#569CD6">fn</span>',  # a keyword
                     '<span style="color:#DCDCAA">react</span>',  # a fn's name
                     '<span style="color:#569CD6">user</span>',  # a role
                     '<span style="color:#9CDCFE">question</span>',  # interpolated code
                     '<span style="color:#6A9955">'):  # a comment
        assert coloured in page, coloured
    assert (EXT / "images" / "highlighting.png").stat().st_size > 10_000


# ---- the declarative parts, against the language --------------------------------------------


def _grammar_words() -> set[str]:
    words: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("match", "begin") and isinstance(value, str):
                    words.update(re.findall(r"[A-Za-z_]+", re.sub(r"\\[A-Za-z]", " ", value)))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(GRAMMAR)
    return words


def test_the_grammar_knows_every_keyword_builtin_and_type() -> None:
    words = _grammar_words()
    names = {part for name in (*KEYWORDS, *BUILTINS, *TYPE_NAMES) for part in name.split(".")}
    missing = sorted(names - words)
    assert not missing, f"add these to syntaxes/sgl.tmLanguage.json: {missing}"


def _expand(body: str) -> str:
    """A snippet's text with each placeholder at its default."""
    for _ in range(3):
        body = re.sub(r"\$\{\d+:([^{}]*)\}", r"\1", body)
    return re.sub(r"\$\{?\d+\}?", "", body)


def test_every_snippet_is_valid_sgl() -> None:
    snippets = json.loads((EXT / "snippets" / "sgl.json").read_text())
    assert {"fn", "gen", "select", "fork", "parallel for", "schema"} <= set(snippets)
    for name, snippet in snippets.items():
        text = _expand("\n".join(snippet["body"]))
        if not text.startswith(("fn ", "schema ", "extern ")):
            text = "fn main():\n" + "".join(f"    {line}\n" for line in text.splitlines())
        module, diags = parse_source(text + "\n", f"{name}.sgl")
        assert module is not None, (name, text, diags)
    gen = _expand("\n".join(snippets["gen"]["body"]))
    assert set(re.findall(r"(\w+)=", gen)) <= set(GEN_PARAMS)


def test_package_json_wires_the_parts() -> None:
    pkg = json.loads((EXT / "package.json").read_text())
    contributes = pkg["contributes"]
    assert contributes["languages"][0]["id"] == "sgl"
    assert contributes["grammars"][0]["scopeName"] == GRAMMAR["scopeName"] == "source.sgl"
    for entry in (contributes["languages"][0]["configuration"], contributes["grammars"][0]["path"],
                  contributes["snippets"][0]["path"], pkg["main"].replace("out/", "src/")
                  .replace(".js", ".ts")):
        assert (EXT / entry).is_file(), entry
    assert {"sgl.server.path", "sgl.server.python", "sgl.server.args"} <= set(
        contributes["configuration"]["properties"])
    assert (EXT / "package-lock.json").is_file()
    config = json.loads((EXT / "language-configuration.json").read_text())
    assert config["comments"]["lineComment"] == "#"
    assert re.match(config["indentationRules"]["increaseIndentPattern"], "    fork 3 as b:")
