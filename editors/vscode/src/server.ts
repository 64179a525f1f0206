// How the extension starts the SGL language server, from the `sgl.server.*` settings.
// No `vscode` import here, so node's test runner can check it outside the editor.

export interface ServerSettings {
  /** The `sglc` command (default "sglc"); used when `python` is empty. */
  path?: string;
  /** A Python interpreter with sglc installed: the server runs as `python -m sglc lsp`. */
  python?: string;
  /** More arguments for `sglc lsp`. */
  args?: string[];
}

export interface ServerCommand {
  command: string;
  args: string[];
}

export function serverCommand(settings: ServerSettings): ServerCommand {
  const extra = settings.args ?? [];
  const python = (settings.python ?? "").trim();
  if (python) {
    return { command: python, args: ["-m", "sglc", "lsp", ...extra] };
  }
  const path = (settings.path ?? "").trim() || "sglc";
  return { command: path, args: ["lsp", ...extra] };
}

/** One line for the user when the server cannot start. */
export function startFailureMessage(cmd: ServerCommand, error: unknown): string {
  const shown = [cmd.command, ...cmd.args].join(" ");
  const why = error instanceof Error ? error.message : String(error);
  return (
    `SGL: could not start the language server (\`${shown}\`): ${why}. ` +
    "Install sglc (pip install -e . in the sglc checkout), or set sgl.server.python " +
    "to a Python that has it."
  );
}
