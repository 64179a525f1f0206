// node --test out/test/: how the settings become the server's command line.

import { strict as assert } from "node:assert";
import { test } from "node:test";

import { serverCommand, startFailureMessage } from "../server";

test("the default runs sglc lsp from PATH", () => {
  assert.deepEqual(serverCommand({}), { command: "sglc", args: ["lsp"] });
  assert.deepEqual(serverCommand({ path: "  " }), { command: "sglc", args: ["lsp"] });
});

test("a configured sglc path and extra arguments", () => {
  assert.deepEqual(serverCommand({ path: "/opt/sglc/bin/sglc", args: ["--debounce", "0.5"] }), {
    command: "/opt/sglc/bin/sglc",
    args: ["lsp", "--debounce", "0.5"],
  });
});

test("a Python interpreter wins over the path", () => {
  assert.deepEqual(serverCommand({ path: "sglc", python: ".venv/bin/python" }), {
    command: ".venv/bin/python",
    args: ["-m", "sglc", "lsp"],
  });
});

test("a start failure names the command and what to do", () => {
  const message = startFailureMessage({ command: "sglc", args: ["lsp"] }, new Error("ENOENT"));
  assert.match(message, /\(`sglc lsp`\): ENOENT/);
  assert.match(message, /sgl\.server\.python/);
});
