// The grammar as VS Code runs it: vscode-textmate over vscode-oniguruma (WebAssembly).
//   tokenizeLines(text) -> [[{text, scopes}]] per line
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const textmate = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const here = dirname(fileURLToPath(import.meta.url));
export const GRAMMAR = join(here, "..", "syntaxes", "sgl.tmLanguage.json");

async function loadGrammar() {
  const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === "source.sgl"
        ? textmate.parseRawGrammar(readFileSync(GRAMMAR, "utf8"), GRAMMAR)
        : null,
  });
  return registry.loadGrammar("source.sgl");
}

export async function tokenizeLines(text) {
  const grammar = await loadGrammar();
  let state = textmate.INITIAL;
  const lines = [];
  for (const line of text.replace(/\n$/, "").split("\n")) {
    const result = grammar.tokenizeLine(line, state);
    lines.push(result.tokens.map((t) => ({
      text: line.slice(t.startIndex, t.endIndex),
      scopes: t.scopes,
    })));
    state = result.ruleStack;
  }
  return lines;
}

// node scripts/tokenize.mjs FILE [LINE]: each token of each (or one, 1-based) line
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, only] = process.argv.slice(2);
  const lines = await tokenizeLines(readFileSync(file, "utf8"));
  lines.forEach((tokens, i) => {
    if (only && Number(only) !== i + 1) return;
    for (const t of tokens) console.log(`${i + 1}: ${JSON.stringify(t.text)} ${t.scopes.slice(1).join(" ")}`);
  });
}
