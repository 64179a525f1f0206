"""Finding, loading and checking modules: `import tools` looks next to the importing file,
then in the standard library (sglc.stdlib); `import "lib/x.sgl"` is relative to the
importing file. Each file is checked once; an import cycle is an error at the import that
closes it."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from sglc.frontend import ast as A
from sglc.frontend.build import build_module
from sglc.frontend.declarations import check_module
from sglc.frontend.parser import parse_tree
from sglc.frontend.symbols import CheckedProgram, ModuleInfo, suggest
from sglc.source import DiagnosticSink


def stdlib_dir() -> Path:
    return Path(str(resources.files("sglc.stdlib")))


def display_name(path: Path) -> str:
    """How a file is named in diagnostics: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def parse_module(source: str, filename: str, sink: DiagnosticSink) -> A.Module:
    result = parse_tree(source, filename)
    sink.extend(result.diagnostics)
    return build_module(result.trees, filename, result.broken, sink)


class ModuleLoader:
    def __init__(self, sink: DiagnosticSink, program: CheckedProgram) -> None:
        self.sink = sink
        self.program = program
        self.done: dict[Path, ModuleInfo | None] = {}
        self.loading: list[Path] = []

    def check_source(self, source: str, filename: str, directory: Path,
                     path: Path | None = None) -> ModuleInfo:
        """Parse and check one module; its imports are loaded (and checked) on the way."""
        self.program.sources[filename] = source
        module = parse_module(source, filename, self.sink)
        name = Path(filename).stem
        if path is not None:
            self.loading.append(path)
        try:
            info = check_module(module, name, lambda imp: self.load(imp, directory),
                                self.sink, self.program, directory)
        finally:
            if path is not None:
                self.loading.pop()
        self.program.modules[filename] = info
        return info

    def load(self, imp: A.Import, directory: Path) -> ModuleInfo | None:
        path = self.resolve(imp, directory)
        if path is None:
            return None
        if path in self.loading:
            chain = [*self.loading[self.loading.index(path):], path]
            shown = " -> ".join(p.name for p in chain)
            self.sink.error(f"import cycle: {shown}", imp.span,
                            "move what both modules need into a third one", "import-cycle")
            return None
        if path not in self.done:
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self.sink.error(f"cannot read '{imp.path or imp.module}': {exc}", imp.span,
                                None, "bad-import")
                self.done[path] = None
                return None
            self.done[path] = self.check_source(source, display_name(path), path.parent, path)
        return self.done[path]

    def resolve(self, imp: A.Import, directory: Path) -> Path | None:
        if imp.path is not None:
            path = (directory / imp.path).resolve()
            if path.is_file():
                return path
            self.sink.error(f"cannot find file '{imp.path}'", imp.span,
                            "paths are relative to the folder of the importing file",
                            "bad-import")
            return None
        rel = Path(*(imp.module or "").split(".")).with_suffix(".sgl")
        for root in (directory, stdlib_dir()):
            if (root / rel).is_file():
                return (root / rel).resolve()
        known = sorted({p.stem for root in (directory, stdlib_dir()) if root.is_dir()
                        for p in root.glob("*.sgl")})
        hint = suggest(imp.module or "", known) or \
            "modules are looked up next to this file, then in the standard library"
        self.sink.error(f"cannot find module '{imp.module}'", imp.span, hint, "bad-import")
        return None
