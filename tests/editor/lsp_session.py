"""A real LSP client (pygls's) driving `sglc lsp` in a subprocess over stdio.

    async with LspSession(tmp_path) as s:
        uri = s.open(path, text)
        diags = await s.diagnostics(uri)
        hover = await s.client.text_document_hover_async(...)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

TIMEOUT = 60.0


class LspSession:
    def __init__(self, root: Path, debounce: float = 0.05) -> None:
        self.root = root
        self.debounce = debounce
        self.client = LanguageClient("sglc-tests", "1")
        self.published: dict[str, list[lsp.PublishDiagnosticsParams]] = {}
        self.logs: list[str] = []  # the server's error logs
        self.infos: list[str] = []
        self.changed = asyncio.Event()
        self.versions: dict[str, int] = {}

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.published.setdefault(params.uri, []).append(params)
            self.changed.set()

        @self.client.feature(lsp.WINDOW_LOG_MESSAGE)
        def on_log(params: lsp.LogMessageParams) -> None:
            if params.type == lsp.MessageType.Error:
                self.logs.append(params.message)
            else:
                self.infos.append(params.message)

    async def __aenter__(self) -> LspSession:
        await self.client.start_io(sys.executable, "-m", "sglc", "lsp", "--debounce",
                                   str(self.debounce), cwd=str(self.root))
        try:
            result = await asyncio.wait_for(self.client.initialize_async(lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(), root_uri=self.root.as_uri(),
                process_id=None)), TIMEOUT)
        except BaseException:
            await self.__aexit__()
            raise
        self.capabilities = result.capabilities
        self.client.initialized(lsp.InitializedParams())
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), TIMEOUT)
            self.client.exit(None)
            await asyncio.wait_for(self.client.stop(), TIMEOUT)
        finally:
            server = self.client._server  # pygls keeps the process here; never leave it running
            if server is not None and server.returncode is None:
                server.kill()
                await server.wait()

    # ---- documents -------------------------------------------------------------------------

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.as_uri()
        self.versions[uri] = 1
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri, "sgl", 1,
                                 text if text is not None else path.read_text())))
        return uri

    def change(self, uri: str, text: str) -> None:
        self.versions[uri] += 1
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri),
            [lsp.TextDocumentContentChangeWholeDocument(text)]))

    async def diagnostics(self, uri: str, count: int = 1) -> list[lsp.Diagnostic]:
        """The diagnostics of the `count`-th publication for `uri`."""
        async def wait() -> None:
            while len(self.published.get(uri, [])) < count:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), TIMEOUT)
        return self.published[uri][count - 1].diagnostics

    # ---- requests --------------------------------------------------------------------------

    @staticmethod
    def doc(uri: str) -> lsp.TextDocumentIdentifier:
        return lsp.TextDocumentIdentifier(uri)

    async def hover(self, uri: str, line: int, col: int) -> lsp.Hover | None:
        return await asyncio.wait_for(self.client.text_document_hover_async(
            lsp.HoverParams(self.doc(uri), lsp.Position(line, col))), TIMEOUT)

    async def definition(self, uri: str, line: int, col: int) -> object:
        return await asyncio.wait_for(self.client.text_document_definition_async(
            lsp.DefinitionParams(self.doc(uri), lsp.Position(line, col))), TIMEOUT)

    async def references(self, uri: str, line: int, col: int,
                         declaration: bool = True) -> list[lsp.Location]:
        return await asyncio.wait_for(self.client.text_document_references_async(
            lsp.ReferenceParams(context=lsp.ReferenceContext(declaration),
                                text_document=self.doc(uri), position=lsp.Position(line, col))),
            TIMEOUT) or []

    async def completion(self, uri: str, line: int, col: int) -> list[lsp.CompletionItem]:
        result = await asyncio.wait_for(self.client.text_document_completion_async(
            lsp.CompletionParams(self.doc(uri), lsp.Position(line, col))), TIMEOUT)
        return list(result.items if isinstance(result, lsp.CompletionList) else result or [])

    async def signature(self, uri: str, line: int, col: int) -> lsp.SignatureHelp | None:
        return await asyncio.wait_for(self.client.text_document_signature_help_async(
            lsp.SignatureHelpParams(self.doc(uri), lsp.Position(line, col))), TIMEOUT)

    async def formatting(self, uri: str) -> list[lsp.TextEdit] | None:
        return await asyncio.wait_for(self.client.text_document_formatting_async(
            lsp.DocumentFormattingParams(self.doc(uri), lsp.FormattingOptions(4, True))),
            TIMEOUT)

    async def symbols(self, uri: str) -> list[lsp.DocumentSymbol]:
        return await asyncio.wait_for(self.client.text_document_document_symbol_async(
            lsp.DocumentSymbolParams(self.doc(uri))), TIMEOUT) or []

    async def code_actions(self, uri: str, diags: list[lsp.Diagnostic]) -> list[lsp.CodeAction]:
        rng = diags[0].range if diags else lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
        return await asyncio.wait_for(self.client.text_document_code_action_async(
            lsp.CodeActionParams(self.doc(uri), rng, lsp.CodeActionContext(diags))),
            TIMEOUT) or []

    async def semantic_tokens(self, uri: str) -> list[int]:
        result = await asyncio.wait_for(self.client.text_document_semantic_tokens_full_async(
            lsp.SemanticTokensParams(self.doc(uri))), TIMEOUT)
        return list(result.data) if result else []


def position_of(text: str, needle: str, nth: int = 0, offset: int = 0) -> tuple[int, int]:
    """The 0-based (line, character) of the `nth` occurrence of `needle`, plus `offset`."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += offset
    line = text.count("\n", 0, at)
    return line, at - (text.rfind("\n", 0, at) + 1)
