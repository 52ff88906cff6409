// The reference side of chat_template_test.py: Hugging Face's own Jinja
// implementation (@huggingface/jinja, fetched by fetch_npm_tokenizers.sh)
// renders chat templates under node, and Hugging Face's JavaScript
// tokenizers (@huggingface/tokenizers) encode the result as
// apply_chat_template(tokenize=True) does (no special tokens added; text
// spelling an added token becomes that token).
//
//   node hf_jinja_reference.mjs JINJA_DIR TEMPLATE_FILE [TOKENIZERS_DIR TOKENIZER_JSON CONFIG_JSON]
//
// stdin: one JSON object of template variables per line. stdout: one line
// per input, {"text": ..., "ids": [...]} (ids only with a tokenizer) or
// {"error": message} when the template raised or failed.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createInterface } from "node:readline";

const [jinjaDir, templateFile, tokenizersDir, tokenizerJson, configJson] = process.argv.slice(2);
if (!templateFile) {
  console.error("usage: node hf_jinja_reference.mjs JINJA_DIR TEMPLATE [TOKENIZERS_DIR TOKENIZER_JSON CONFIG_JSON]");
  process.exit(2);
}
const { Template, Environment } = await import(
  pathToFileURL(join(resolve(jinjaDir), "dist", "index.js")).href);
// lockstep defines no strftime_now (a prompt must not depend on the clock):
// the reference's global of that name is not declared either, so Llama
// 3.2's template takes its fixed date on both sides.
const declare = Environment.prototype.set;
Environment.prototype.set = function (name, value) {
  if (name === "strftime_now") return undefined;
  return declare.call(this, name, value);
};
const template = new Template(readFileSync(templateFile, "utf8"));
let tokenizer = null;
if (tokenizerJson) {
  const { Tokenizer } = await import(
    pathToFileURL(join(resolve(tokenizersDir), "dist", "tokenizers.mjs")).href);
  tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerJson, "utf8")),
                            JSON.parse(readFileSync(configJson, "utf8")));
}

const out = [];
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line === "") continue;
  const context = JSON.parse(line);
  try {
    const text = template.render(context);
    const result = { text };
    if (tokenizer) result.ids = text === "" ? [] : tokenizer.encode(text, { add_special_tokens: false }).ids;
    out.push(JSON.stringify(result));
  } catch (e) {
    out.push(JSON.stringify({ error: String(e && e.message ? e.message : e) }));
  }
}
process.stdout.write(out.join("\n") + "\n");
