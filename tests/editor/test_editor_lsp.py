"""`sglc lsp` driven by a real LSP client (pygls's) over stdio: diagnostics as `sglc check`
reports them, hover, definition, references, symbols, completion, signature help,
formatting, the add-import action, semantic tokens, and a server that survives anything."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lsp_session import LspSession, position_of
from lsprotocol import types as lsp
from test_editor_fmt import MESSY, TIDY

ROOT = Path(__file__).resolve().parents[2]

MAIN = '''\
"""A test program."""
import helper

schema Person:
    """A person."""
    name: str
    age: int

extern fn search(query: str) -> str

fn greet(who: str, times: int = 2) -> str:
    """Say hello."""
    let text = "Hello {who}"
    return text

fn main():
    let p = extract()
    user "{greet(p.name)} {helper.shout(p.name)} {search(p.name)}"
    assistant: gen code: /[A-Z]{2}[0-9]+/(max_tokens=8)
    assistant: gen n: int(max_tokens=4)
    print(code, n, helper.shout(greet(p.name, times=3)))

fn extract() -> Person:
    assistant: gen person: Person(max_tokens=64)
    return person
'''
HELPER = '''\
"""Helpers."""

fn shout(text: str) -> str:
    """Upper-case it."""
    return text.upper()
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "main.sgl").write_text(MAIN)
    (tmp_path / "helper.sgl").write_text(HELPER)
    return tmp_path


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def at(text: str, needle: str, nth: int = 0, offset: int = 0) -> tuple[int, int]:
    return position_of(text, needle, nth, offset)


def span_of(rng: lsp.Range) -> tuple[int, int, int, int]:
    return rng.start.line, rng.start.character, rng.end.line, rng.end.character


# ---- diagnostics ---------------------------------------------------------------------------


def test_diagnostics_are_those_of_sglc_check(tmp_path: Path) -> None:
    source = ('fn main():\n    user "\U0001F600 {unknwn}"\n    let unused = 1\n'
              '    assistant: gen x: int(max_tokens=0)\n    print(x + "a")\n')
    path = tmp_path / "bad.sgl"
    path.write_text(source)
    check = subprocess.run([sys.executable, "-m", "sglc", "check", "bad.sgl", "--format", "json"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    expected = json.loads(check.stdout)
    assert len(expected) >= 4

    async def scenario() -> None:
        async with LspSession(tmp_path) as s:
            uri = s.open(path)
            got = await s.diagnostics(uri)
            assert len(got) == len(expected)
            for d, e in zip(got, expected, strict=True):
                assert d.message.split("\nhint: ")[0] == e["message"]
                assert d.code == e["code"] and d.source == "sglc"
                assert d.severity == (lsp.DiagnosticSeverity.Error if e["severity"] == "error"
                                      else lsp.DiagnosticSeverity.Warning)
                if e["hint"]:
                    assert d.message.endswith(f"\nhint: {e['hint']}")
                line = source.splitlines()[e["line"] - 1]
                utf16 = len(line[:e["col"] - 1].encode("utf-16-le")) // 2  # the emoji counts 2
                assert (d.range.start.line, d.range.start.character) == (e["line"] - 1, utf16)
            unknown = got[0]
            assert span_of(unknown.range) == (1, 14, 1, 20)  # after "😀 {" in UTF-16 units
            assert s.logs == []
    run(scenario())


def test_diagnostics_follow_edits_debounced(project: Path) -> None:
    async def scenario() -> None:
        async with LspSession(project, debounce=0.4) as s:
            uri = s.open(project / "main.sgl")
            assert await s.diagnostics(uri) == ()
            broken = MAIN.replace("return text", "return txet")
            for i in range(3):  # one burst of typing: one check, of the last text
                s.change(uri, broken.replace("txet", "txet" + "x" * i))
            diags = await s.diagnostics(uri, 2)
            (d,) = [d for d in diags if d.severity == lsp.DiagnosticSeverity.Error]
            assert d.message.startswith("unknown name 'txetxx'") and d.code == "unknown-name"
            line, col = at(MAIN, "text\n\nfn main")
            assert span_of(d.range) == (line, col, line, col + len("txetxx"))
            await asyncio.sleep(0.8)
            assert len(s.published[uri]) == 2
            s.change(uri, MAIN)
            assert await s.diagnostics(uri, 3) == ()
            s.client.text_document_did_close(lsp.DidCloseTextDocumentParams(s.doc(uri)))
            assert await s.diagnostics(uri, 4) == ()
    run(scenario())


# ---- hover, definition, references, symbols ------------------------------------------------


def test_hover(project: Path) -> None:
    async def scenario() -> None:
        async with LspSession(project) as s:
            uri = s.open(project / "main.sgl")

            async def hover(needle: str, nth: int = 0, offset: int = 0) -> str:
                h = await s.hover(uri, *at(MAIN, needle, nth, offset))
                assert h is not None, needle
                return h.contents.value

            assert await hover("greet(p.name)") == (
                "```sgl\nfn greet(who: str, times: int = 2) -> str\n```\n\nSay hello.")
            assert "extern fn search(query: str) -> str" in await hover("search(p.name)")
            assert "fn shout(text: str) -> str" in await hover("shout(p.name)")
            assert "(let) text: str" in await hover("text =")
            assert "(let) p: Person" in await hover("p.name")
            assert "(field of Person) name: str" in await hover("name)", offset=0)
            assert "(parameter) who: str" in await hover("who: str")
            code = await hover("code:")
            assert "(gen) code: str" in code and "regex `/[A-Z]{2}[0-9]+/`" in code
            n = await hover("n: int")
            assert "(gen) n: int" in n and "canonical regex: `-?(0|[1-9][0-9]*)`" in n
            person = await hover("person:")
            assert "schema **Person**" in person and "canonical regex: `\\{" in person
            assert await hover("max_tokens=8") == (
                "```sgl\n(gen parameter) max_tokens: int (default 128)\n```\n\n"
                "the most tokens to generate")
            assert "len(value) -> int" not in await hover("print(")
            assert "print(*values" in await hover("print(")
            assert "module helper" in await hover("import helper", offset=8)
            assert "schema Person:\n    name: str\n    age: int" in await hover("Person(max")
            assert await s.hover(uri, *at(MAIN, '"""A test')) is None  # no name there
    run(scenario())


def test_definition_and_references(project: Path) -> None:
    async def scenario() -> None:
        async with LspSession(project) as s:
            uri = s.open(project / "main.sgl")
            helper_uri = (project / "helper.sgl").as_uri()

            async def defn(needle: str, nth: int = 0, offset: int = 0) -> lsp.Location:
                result = await s.definition(uri, *at(MAIN, needle, nth, offset))
                assert isinstance(result, lsp.Location), needle
                return result

            loc = await defn("greet(p.name)")
            assert (loc.uri, loc.range.start.line) == (uri, at(MAIN, "fn greet")[0])
            assert span_of(loc.range)[1:] == (3, at(MAIN, "fn greet")[0], 8)
            loc = await defn("text\n\nfn main")  # a let-name
            assert span_of(loc.range) == (*at(MAIN, "text ="), *at(MAIN, "text =", offset=4))
            loc = await defn("shout(p.name)")  # into another file
            assert loc.uri == helper_uri and span_of(loc.range) == (2, 3, 2, 8)
            loc = await defn("import helper")  # an import opens its module
            assert loc.uri == helper_uri and loc.range.start.line == 0
            loc = await defn("Person(max")  # a schema as a type
            assert span_of(loc.range) == (*at(MAIN, "Person:"), *at(MAIN, "Person:", offset=6))
            loc = await defn("name)")  # a schema field through p's type
            assert loc.range.start.line == at(MAIN, "name: str")[0]
            loc = await defn("times=3")  # a keyword argument: the parameter
            assert span_of(loc.range)[:2] == at(MAIN, "times: int")
            assert await s.definition(uri, *at(MAIN, "print(")) is None  # a builtin

            refs = await s.references(uri, *at(MAIN, "p = extract"))
            assert sorted(r.range.start.line for r in refs) == [16, 17, 17, 17, 20]
            refs = await s.references(uri, *at(MAIN, "p = extract"), declaration=False)
            assert len(refs) == 4

            # a fn of helper.sgl: its declaration there and both calls in main.sgl
            s.open(project / "helper.sgl")
            refs = await s.references(helper_uri, *at(HELPER, "shout"))
            assert sorted((r.uri == uri, r.range.start.line) for r in refs) == [
                (False, 2), (True, 17), (True, 20)]
    run(scenario())


def test_document_symbols_into_stdlib_and_outline(tmp_path: Path) -> None:
    agent = (ROOT / "examples" / "agent.sgl").read_text()
    (tmp_path / "agent.sgl").write_text(agent)

    async def scenario() -> None:
        async with LspSession(tmp_path) as s:
            uri = s.open(tmp_path / "agent.sgl")
            outline = await s.symbols(uri)
            assert [(x.name, x.kind) for x in outline] == [
                ("tools", lsp.SymbolKind.Module), ("react", lsp.SymbolKind.Function),
                ("main", lsp.SymbolKind.Function)]
            assert [c.name for c in outline[1].children] == ["question", "max_steps"]
            react = outline[1]
            assert react.range.start.line == at(agent, "\nfn react", offset=1)[0]
            assert react.range.end.line == at(agent, 'return "no answer"')[0]

            loc = await s.definition(uri, *at(agent, "calculator(arg"))
            stdlib_tools = (ROOT / "stdlib" / "tools.sgl").resolve()
            assert loc.uri == stdlib_tools.as_uri()
            assert loc.range.start.line == at(stdlib_tools.read_text(), "calculator")[0]
    run(scenario())


# ---- completion, signature help ------------------------------------------------------------


def test_completion(project: Path) -> None:
    async def scenario() -> None:
        async with LspSession(project) as s:
            uri = s.open(project / "main.sgl")
            await s.diagnostics(uri)

            async def labels(text: str, needle: str, offset: int) -> list[str]:
                s.change(uri, text)
                return [i.label for i in await s.completion(uri, *at(text, needle,
                                                                     offset=offset))]

            # while typing, the text does not parse: the last version that did tells types
            typing = MAIN.replace("    print(code", "    let q = p.\n    print(code")
            assert await labels(typing, "p.\n", 2) == ["name", "age"]
            typing = MAIN.replace("    print(code", "    helper.\n    print(code")
            assert await labels(typing, "helper.\n", 7) == ["shout"]
            typing = MAIN.replace("    print(code", "    text.\n    print(code")
            assert "upper" not in await labels(typing, "    text.\n", 9)  # text is greet's
            typing = MAIN.replace("    print(code", "    code.\n    print(code")
            assert {"upper", "strip", "split"} <= set(await labels(typing, "code.\n", 5))
            typing = MAIN.replace("gen n: int(max_tokens=4)", "gen n: int(max_tokens=4, ")
            names = await labels(typing, "max_tokens=4, ", 14)
            assert "stop" in names and "temperature" in names and "max_tokens" not in names
            typing = MAIN.replace("    print(code", "    gen z: \n    print(code")
            assert {"int", "str", "Person", "json"} <= set(await labels(typing, "gen z: ", 7))
            typing = MAIN.replace("    print(code", "    c\n    print(code")
            names = await labels(typing, "    c\n", 5)
            assert {"p", "code", "n", "greet", "helper", "search", "len", "fork",
                    "parallel"} <= set(names)
            assert "who" not in names  # greet's locals (`text`, its other one, is a builtin too)
            typing = MAIN.replace("    print(code", "    assistant: g\n    print(code")
            names = await labels(typing, "assistant: g\n", 12)  # after a role, not a type
            assert "gen" in names and "select" in names and "json" not in names
            typing = MAIN.replace("    print(code", '    user "Q: {\n    print(code')
            assert "p" in await labels(typing, '"Q: {', 5)  # in an interpolation
            typing = MAIN.replace("    print(code", '    user "Q: \n    print(code')
            assert await labels(typing, '"Q: ', 4) == []  # in a string's text
    run(scenario())


def test_signature_help(project: Path) -> None:
    async def scenario() -> None:
        async with LspSession(project) as s:
            uri = s.open(project / "main.sgl")
            await s.diagnostics(uri)
            help_ = await s.signature(uri, *at(MAIN, "greet(p.name, times", offset=6))
            assert help_ is not None
            (sig,) = help_.signatures
            assert sig.label == "fn greet(who: str, times: int = 2) -> str"
            assert help_.active_parameter == 0 and sig.documentation == "Say hello."
            help_ = await s.signature(uri, *at(MAIN, "times=3", offset=5))
            assert help_ is not None and help_.active_parameter == 1
            start, end = help_.signatures[0].parameters[1].label
            assert help_.signatures[0].label[start:end] == "times: int = 2"
            typing = MAIN.replace("gen n: int(max_tokens=4)", "gen n: int(max_tokens=4, stop=")
            s.change(uri, typing)
            help_ = await s.signature(uri, *at(typing, "stop=", offset=5))
            assert help_ is not None and help_.signatures[0].label.startswith("gen(max_tokens")
            label = help_.signatures[0].label
            start, end = help_.signatures[0].parameters[help_.active_parameter].label
            assert label[start:end] == "stop: str | list[str]"
            assert await s.signature(uri, *at(typing, "let p")) is None
    run(scenario())


# ---- formatting, code actions, semantic tokens ----------------------------------------------


def test_formatting_and_add_missing_import(tmp_path: Path) -> None:
    (tmp_path / "messy.sgl").write_text(MESSY)
    needs_import = 'fn main():\n    print(tools.calculator("1+1"))\n'
    (tmp_path / "noimport.sgl").write_text(needs_import)

    async def scenario() -> None:
        async with LspSession(tmp_path) as s:
            uri = s.open(tmp_path / "messy.sgl")
            (edit,) = await s.formatting(uri)
            assert edit.new_text == TIDY and edit.range.start == lsp.Position(0, 0)
            assert edit.range.end.line >= len(MESSY.splitlines())
            s.change(uri, TIDY)
            assert list(await s.formatting(uri)) == []
            s.change(uri, "fn f(:\n")
            assert not await s.formatting(uri)  # syntax errors: nothing to apply
            assert s.infos[-1].endswith("messy.sgl has syntax errors")

            uri = s.open(tmp_path / "noimport.sgl")
            diags = await s.diagnostics(uri)
            (action,) = await s.code_actions(uri, list(diags))
            assert action.title == "Add `import tools`"
            assert action.kind == lsp.CodeActionKind.QuickFix
            (change,) = action.edit.changes[uri]
            assert (change.new_text, change.range.start) == ("import tools\n", lsp.Position(0, 0))
            s.change(uri, "import tools\n" + needs_import)
            assert await s.diagnostics(uri, 2) == ()
            s.change(uri, 'fn main():\n    print(nosuchmodule.f("1"))\n')
            diags = await s.diagnostics(uri, 3)
            assert diags and await s.code_actions(uri, list(diags)) == []
    run(scenario())


def test_semantic_tokens(project: Path) -> None:
    async def scenario() -> None:
        async with LspSession(project) as s:
            legend = s.capabilities.semantic_tokens_provider.legend.token_types
            uri = s.open(project / "main.sgl")
            data = await s.semantic_tokens(uri)
            tokens, line, col = {}, 0, 0
            for i in range(0, len(data), 5):
                dl, dc, length, kind, _mods = data[i:i + 5]
                line, col = line + dl, (col + dc if dl == 0 else dc)
                text = MAIN.splitlines()[line][col:col + length]
                tokens.setdefault(text, set()).add(legend[kind])
            assert tokens["greet"] == {"function"} and tokens["helper"] == {"namespace"}
            assert tokens["Person"] == {"type"} and tokens["who"] == {"parameter"}
            assert tokens["p"] == {"variable"} and tokens["name"] == {"property"}
    run(scenario())


# ---- robustness --------------------------------------------------------------------------------

BROKEN = [
    "", "\n\n", "fn", "fn f(:\n", "fn f():\n    let x = [1,\n", "\t\t\tuser\n", ")))\n",
    'fn f():\n    user "{', "fn f():\n  x = 1\n    y = 2\n", "schema S:\n", "\x00\x01\x02",
    'fn f():\n    gen x: /[/\n', "import\n", "fn f() -> :\n", "fn f():\n    fork -1 as b:\n",
    "fn f(a: int, a: int):\n    return a\n", 'import "../../../nowhere.sgl" as x\n',
]


def test_broken_files_never_crash_the_server(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with LspSession(tmp_path) as s:
            uri = s.open(tmp_path / "broken.sgl", BROKEN[0])
            for i, text in enumerate(BROKEN):
                s.change(uri, text)
                end = at(text + "\n", "\n") if "\n" in text else (0, len(text))
                for line, col in ((0, 0), end):
                    await s.hover(uri, line, col)
                    await s.definition(uri, line, col)
                    await s.completion(uri, line, col)
                    await s.signature(uri, line, col)
                await s.symbols(uri)
                await s.formatting(uri)
                await s.semantic_tokens(uri)
                diags = await s.diagnostics(uri, i + 2)
                assert text.strip("\n") == "" or diags, text
            assert s.logs == [], s.logs[:1]
            # the server still answers
            s.change(uri, "fn main():\n    pass\n")
            assert await s.diagnostics(uri, len(BROKEN) + 2) == ()
    run(scenario())


def test_a_handler_that_fails_is_logged_and_answers_nothing() -> None:
    from sglc.editor.server import guarded

    class Server:
        logged: list[str] = []

        def log_error(self, what: str) -> None:
            self.logged.append(what)

    @guarded([])
    def completion(ls: object, params: object) -> list[str]:
        raise RuntimeError("a bug")

    server = Server()
    assert completion(server, None) == []
    assert server.logged == ["completion failed"]
