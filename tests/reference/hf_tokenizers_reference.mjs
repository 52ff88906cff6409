// The reference side of tokenizer_npm_test.py for tokenizer.json files:
// Hugging Face's own JavaScript implementation (@huggingface/tokenizers,
// fetched by fetch_npm_tokenizers.sh) run under node.
//
//   node hf_tokenizers_reference.mjs PACKAGE_DIR TOKENIZER_JSON TOKENIZER_CONFIG_JSON
//
// stdin: one JSON string per line. stdout: one JSON object per line,
//   {"ids": encode(text) with the tokenizer's special tokens (BOS, template),
//    "ids_plain": encode(text, add_special_tokens = false),
//    "decoded": decode(ids_plain) with special tokens kept and no
//               clean-up of tokenization spaces (what the tokenizer.json's
//               decoder gives, as the Rust library's decode does)}.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createInterface } from "node:readline";

const [packageDir, tokenizerJson, configJson] = process.argv.slice(2);
if (!configJson) {
  console.error("usage: node hf_tokenizers_reference.mjs PACKAGE_DIR TOKENIZER_JSON CONFIG_JSON");
  process.exit(2);
}
const { Tokenizer } = await import(
  pathToFileURL(join(resolve(packageDir), "dist", "tokenizers.mjs")).href);
const tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerJson, "utf8")),
                                JSON.parse(readFileSync(configJson, "utf8")));

const out = [];
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line === "") continue;
  const text = JSON.parse(line);
  const ids = tokenizer.encode(text).ids;
  const idsPlain = tokenizer.encode(text, { add_special_tokens: false }).ids;
  // (decode refuses an empty array: the text of no tokens is "".)
  const decoded = idsPlain.length === 0 ? "" : tokenizer.decode(idsPlain, {
    skip_special_tokens: false, clean_up_tokenization_spaces: false });
  out.push(JSON.stringify({ ids, ids_plain: idsPlain, decoded }));
}
process.stdout.write(out.join("\n") + "\n");
