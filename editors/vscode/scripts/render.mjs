// An SGL file highlighted by the extension's grammar (as VS Code tokenizes it) as an HTML
// page in VS Code's Dark Modern colours; a headless browser turns it into the screenshot.
//   node scripts/render.mjs ../../examples/agent.sgl images/highlighting.html
//   chromium --headless --screenshot=images/highlighting.png --window-size=900,700 \
//       file://$PWD/images/highlighting.html
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

import { tokenizeLines } from "./tokenize.mjs";

// scope prefix -> colour; the longest matching prefix of the innermost scope wins
export const THEME = {
  comment: "#6A9955",
  "string.quoted.docstring": "#6A9955",
  string: "#CE9178",
  "string.regexp": "#D16969",
  "keyword.operator.regexp": "#DCDCAA",
  "constant.character.escape": "#D7BA7D",
  "constant.numeric": "#B5CEA8",
  "constant.language": "#569CD6",
  "storage.type": "#569CD6",
  "storage.modifier": "#569CD6",
  "keyword.control": "#C586C0",
  "keyword.other.spec": "#C586C0",
  "keyword.other.gen": "#569CD6",
  "keyword.other.select": "#569CD6",
  "keyword.operator.logical": "#569CD6",
  "keyword.operator": "#D4D4D4",
  "entity.name.function": "#DCDCAA",
  "support.function": "#DCDCAA",
  "entity.name.type": "#4EC9B0",
  "support.type": "#4EC9B0",
  "entity.name.namespace": "#4EC9B0",
  "entity.name.tag.role": "#569CD6",
  "variable.other.gen": "#9CDCFE",
  "variable.parameter": "#9CDCFE",
  variable: "#9CDCFE",
  "punctuation.section.interpolation": "#569CD6",
  "meta.embedded": "#D4D4D4",
};

export function colour(scopes) {
  for (let i = scopes.length - 1; i >= 0; i--) {
    let best = "";
    for (const prefix of Object.keys(THEME)) {
      if ((scopes[i] === prefix || scopes[i].startsWith(prefix + ".")) && prefix.length > best.length) {
        best = prefix;
      }
    }
    if (best) return THEME[best];
  }
  return null;
}

const escape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export async function renderHtml(text, title) {
  const lines = await tokenizeLines(text);
  const body = lines
    .map((tokens, i) => {
      const code = tokens
        .map((t) => {
          const c = colour(t.scopes);
          return c ? `<span style="color:${c}">${escape(t.text)}</span>` : escape(t.text);
        })
        .join("");
      return `<div class="line"><span class="num">${i + 1}</span>${code}</div>`;
    })
    .join("");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title><style>
body { margin: 0; background: #1F1F1F; }
.tab { background: #181818; color: #FFFFFF; font: 13px sans-serif; padding: 8px 16px;
       border-top: 2px solid #0078D4; display: inline-block; }
pre { margin: 0; padding: 10px 0; color: #CCCCCC; background: #1F1F1F;
      font: 14px/20px "DejaVu Sans Mono", monospace; }
.num { display: inline-block; width: 3em; margin-right: 1.5em; text-align: right; color: #6E7681; }
</style></head><body><div class="tab">${escape(title)}</div><pre>${body}</pre></body></html>
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output] = process.argv.slice(2);
  writeFileSync(output, await renderHtml(readFileSync(input, "utf8"), basename(input)));
}
