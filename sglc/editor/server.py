"""`sglc lsp`: the SGL language server (pygls, over stdio).

    open/change/save ──► analyze (debounced on change) ──► publishDiagnostics
    hover, definition, references, documentSymbol, completion, signatureHelp,
    formatting, codeAction, semanticTokens ──► the document's latest Analysis

Every handler is guarded: an exception of ours is logged to the client (window/logMessage)
and the request answers with nothing, so a broken file never takes the server down.
"""

from __future__ import annotations

import asyncio
import functools
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from sglc.editor import actions
from sglc.editor.analysis import Analysis, analyze, path_of
from sglc.editor.complete import complete, signature_help
from sglc.editor.describe import hover_markdown
from sglc.editor.formatter import FormatError, format_source
from sglc.editor.symbols import Occurrence, Symbol
from sglc.source import Diagnostic, Span

_R = TypeVar("_R")
SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
            "note": lsp.DiagnosticSeverity.Information}


class SglLanguageServer(LanguageServer):
    """The server and what it knows of each open document."""

    def __init__(self, debounce: float = 0.3) -> None:
        super().__init__("sglc", "0.1.0")
        self.debounce = debounce
        self.analyses: dict[str, Analysis] = {}  # uri -> analysis of its latest text
        self.parsed: dict[str, Analysis] = {}  # uri -> latest analysis that parsed
        self.timers: dict[str, asyncio.TimerHandle] = {}

    # ---- documents -----------------------------------------------------------------------

    def filename(self, uri: str) -> str:
        path = to_fs_path(uri)
        return str(Path(path).resolve()) if path and uri.startswith("file:") else "untitled.sgl"

    def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text (made now if it is out of date)."""
        text = self.workspace.get_text_document(uri).source
        cached = self.analyses.get(uri)
        if cached is not None and cached.text == text:
            return cached
        result = analyze(text, self.filename(uri))
        self.analyses[uri] = result
        if result.parsed:
            self.parsed[uri] = result
        return result

    def publish(self, uri: str) -> None:
        self.timers.pop(uri, None)
        try:
            a = self.analysis(uri)
        except Exception:  # noqa: BLE001 - a bug of ours: logged, old diagnostics stay
            self.log_error(f"checking {uri} failed")
            return
        lines = a.text.splitlines()
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri, [self.diagnostic(d, lines) for d in a.diagnostics]))

    def schedule(self, uri: str) -> None:
        old = self.timers.pop(uri, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self.timers[uri] = loop.call_later(self.debounce, self.publish, uri)

    def forget(self, uri: str) -> None:
        timer = self.timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        self.analyses.pop(uri, None)
        self.parsed.pop(uri, None)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))

    # ---- positions -----------------------------------------------------------------------

    def lines_of(self, file: str, a: Analysis) -> list[str]:
        if file == a.filename:
            return a.text.splitlines()
        if file in a.program.sources:
            return a.program.sources[file].splitlines()
        try:
            return path_of(file).read_text(encoding="utf-8").splitlines()
        except OSError:
            return []

    def range(self, span: Span, lines: list[str]) -> lsp.Range:
        codec = self.workspace.position_codec
        start = lsp.Position(max(span.line - 1, 0), max(span.col - 1, 0))
        end = lsp.Position(max(span.end_line - 1, 0), max(span.end_col - 1, 0))
        return lsp.Range(codec.position_to_client_units(lines, start),
                         codec.position_to_client_units(lines, end))

    def location(self, span: Span, a: Analysis) -> lsp.Location:
        return lsp.Location(self.uri_of(span.file, a), self.range(span, self.lines_of(span.file, a)))

    def uri_of(self, file: str, a: Analysis) -> str:
        if file == a.filename and file == "untitled.sgl":
            return next((u for u, x in self.analyses.items() if x is a), file)
        return from_fs_path(str(path_of(file))) or file

    def cursor(self, uri: str, pos: lsp.Position) -> tuple[int, int]:
        """A client position as the 1-based (line, col) of the front end's spans."""
        lines = self.workspace.get_text_document(uri).lines
        p = self.workspace.position_codec.position_from_client_units(list(lines), pos)
        return p.line + 1, p.character + 1

    def diagnostic(self, d: Diagnostic, lines: list[str]) -> lsp.Diagnostic:
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        return lsp.Diagnostic(self.range(d.span, lines), message, SEVERITY[d.severity],
                              d.code or None, source="sglc")

    def occurrence(self, uri: str, pos: lsp.Position) -> tuple[Analysis, Occurrence] | None:
        a = self.analysis(uri)
        m = a.index.module(a.filename)
        occ = m.at(*self.cursor(uri, pos)) if m else None
        return (a, occ) if occ else None

    def log_error(self, what: str) -> None:
        self.window_log_message(lsp.LogMessageParams(
            lsp.MessageType.Error, f"sglc lsp: {what}:\n{traceback.format_exc()}"))


def guarded(default: _R) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Log an exception of a handler to the client and answer `default` instead."""
    def wrap(handler: Callable[..., _R]) -> Callable[..., _R]:
        @functools.wraps(handler)
        def run(ls: SglLanguageServer, params: object) -> _R:
            try:
                return handler(ls, params)
            except Exception:  # noqa: BLE001 - never let one request take the server down
                ls.log_error(f"{handler.__name__} failed")
                return default
        return run
    return wrap


def create_server(debounce: float = 0.3) -> SglLanguageServer:
    server = SglLanguageServer(debounce)
    register = server.feature

    @register(lsp.TEXT_DOCUMENT_DID_OPEN)
    @guarded(None)
    def did_open(ls: SglLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @register(lsp.TEXT_DOCUMENT_DID_CHANGE)
    @guarded(None)
    def did_change(ls: SglLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @register(lsp.TEXT_DOCUMENT_DID_SAVE)
    @guarded(None)
    def did_save(ls: SglLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @register(lsp.TEXT_DOCUMENT_DID_CLOSE)
    @guarded(None)
    def did_close(ls: SglLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)

    @register(lsp.TEXT_DOCUMENT_HOVER)
    @guarded(None)
    def hover(ls: SglLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        found = ls.occurrence(params.text_document.uri, params.position)
        if found is None:
            return None
        a, occ = found
        node_span = getattr(occ.symbol.node, "span", None)
        constraint = a.gen_constraints.get(node_span) if occ.symbol.kind == "gen" else None
        text = hover_markdown(occ, {**a.program.sources, a.filename: a.text},
                              (constraint.regex, constraint.schema) if constraint else None)
        if text is None:
            return None
        return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text),
                         ls.range(occ.span, a.text.splitlines()))

    @register(lsp.TEXT_DOCUMENT_DEFINITION)
    @guarded(None)
    def definition(ls: SglLanguageServer, params: lsp.DefinitionParams
                   ) -> lsp.Location | None:
        found = ls.occurrence(params.text_document.uri, params.position)
        if found is None:
            return None
        a, occ = found
        return target(ls, a, occ.symbol)

    @register(lsp.TEXT_DOCUMENT_REFERENCES)
    @guarded(None)
    def references(ls: SglLanguageServer, params: lsp.ReferenceParams
                   ) -> list[lsp.Location] | None:
        found = ls.occurrence(params.text_document.uri, params.position)
        if found is None:
            return None
        a, occ = found
        seen: set[tuple[str, int, int]] = set()
        out = []
        others = [x for u, x in ls.analyses.items() if u != params.text_document.uri]
        for analysis in (a, *others):
            for ref in analysis.index.references(occ.symbol):
                if ref.is_def and not params.context.include_declaration:
                    continue
                key = (str(path_of(ref.span.file)), ref.span.line, ref.span.col)
                if key not in seen:
                    seen.add(key)
                    out.append(ls.location(ref.span, analysis))
        return out

    @register(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded(None)
    def document_symbols(ls: SglLanguageServer, params: lsp.DocumentSymbolParams
                         ) -> list[lsp.DocumentSymbol] | None:
        a = ls.analysis(params.text_document.uri)
        m = a.index.module(a.filename)
        lines = a.text.splitlines()
        return [outline(ls, s, lines) for s in m.symbols] if m else []

    @register(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", "("]))
    @guarded(None)
    def completion(ls: SglLanguageServer, params: lsp.CompletionParams
                   ) -> lsp.CompletionList | None:
        uri = params.text_document.uri
        current = ls.analysis(uri)
        a = current if current.parsed else ls.parsed.get(uri, current)
        line, col = ls.cursor(uri, params.position)
        text_lines = ls.workspace.get_text_document(uri).lines
        before = text_lines[line - 1][:col - 1] if line <= len(text_lines) else ""
        return lsp.CompletionList(False, complete(a, before, line))

    @register(lsp.TEXT_DOCUMENT_SIGNATURE_HELP,
              lsp.SignatureHelpOptions(trigger_characters=["(", ","]))
    @guarded(None)
    def signature(ls: SglLanguageServer, params: lsp.SignatureHelpParams
                  ) -> lsp.SignatureHelp | None:
        uri = params.text_document.uri
        current = ls.analysis(uri)
        a = current if current.parsed else ls.parsed.get(uri, current)
        doc = ls.workspace.get_text_document(uri)
        offset = doc.offset_at_position(params.position)
        return signature_help(a, doc.source, offset)

    @register(lsp.TEXT_DOCUMENT_FORMATTING)
    @guarded(None)
    def formatting(ls: SglLanguageServer, params: lsp.DocumentFormattingParams
                   ) -> list[lsp.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        try:
            text = format_source(doc.source, ls.filename(params.text_document.uri))
        except FormatError as exc:
            ls.window_log_message(lsp.LogMessageParams(lsp.MessageType.Info,
                                                       f"sglc fmt: {exc}"))
            return None
        if text == doc.source:
            return []
        end = lsp.Position(len(doc.lines), 0)
        return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), end), text)]

    @register(lsp.TEXT_DOCUMENT_CODE_ACTION,
              lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    @guarded(None)
    def code_action(ls: SglLanguageServer, params: lsp.CodeActionParams
                    ) -> list[lsp.CodeAction] | None:
        a = ls.analysis(params.text_document.uri)
        return actions.add_missing_imports(a, params.text_document.uri, params.context.diagnostics)

    @register(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, actions.SEMANTIC_LEGEND)
    @guarded(None)
    def semantic_tokens(ls: SglLanguageServer, params: lsp.SemanticTokensParams
                        ) -> lsp.SemanticTokens | None:
        a = ls.analysis(params.text_document.uri)
        m = a.index.module(a.filename)
        return lsp.SemanticTokens(actions.semantic_data(m, a.text) if m else [])

    return server


def target(ls: SglLanguageServer, a: Analysis, sym: Symbol) -> lsp.Location | None:
    """Where a symbol is declared; an import's is the module file it loads."""
    if sym.kind == "import":
        if sym.module is None:
            return None
        return lsp.Location(ls.uri_of(sym.module.file, a),
                            lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)))
    return ls.location(sym.span, a) if sym.span is not None else None


_OUTLINE_KINDS = {
    "fn": lsp.SymbolKind.Function, "extern": lsp.SymbolKind.Function,
    "schema": lsp.SymbolKind.Struct, "field": lsp.SymbolKind.Field,
    "import": lsp.SymbolKind.Module, "param": lsp.SymbolKind.Variable,
}


def outline(ls: SglLanguageServer, sym: Symbol, lines: list[str]) -> lsp.DocumentSymbol:
    assert sym.span is not None
    full = sym.full or sym.span
    children = [outline(ls, c, lines) for c in sym.children if c.span is not None
                and (sym.kind == "schema" or c.kind == "param")]
    detail = "extern fn" if sym.kind == "extern" else sym.kind
    return lsp.DocumentSymbol(sym.name, _OUTLINE_KINDS.get(sym.kind, lsp.SymbolKind.Variable),
                              ls.range(full, lines), ls.range(sym.span, lines), detail=detail,
                              children=children)


def serve_stdio(debounce: float = 0.3) -> None:
    """Run the server on standard input and output until the client says exit."""
    create_server(debounce).start_io()
