// The snapshot tests run over copies of the repo's examples (test/snap/*.sgl, not committed),
// so their .snap files live here and not beside the examples.
import { copyFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const examples = join(here, "..", "..", "..", "examples");
for (const name of readdirSync(examples).filter((n) => n.endsWith(".sgl"))) {
  copyFileSync(join(examples, name), join(here, "..", "test", "snap", name));
}
