// The Jinja renderer of chat templates on hand-written templates: what it
// renders, and the one-line errors naming the line and the construct for
// what it cannot run. (tests/reference/chat_template_test.py compares it
// with Hugging Face's own implementation on the real templates.)
#include "lockstep/tokenizer/chat_template.h"

#include <gtest/gtest.h>

namespace lockstep::runtime {
namespace {

std::string Render(std::string_view source, std::string_view context) {
  Result<ChatTemplate> t = ChatTemplate::Parse(source);
  if (!t.ok()) return "PARSE: " + t.status().message();
  Result<std::string> out = t->RenderJson(context);
  if (!out.ok()) return "RENDER: " + out.status().message();
  return *out;
}

TEST(ChatTemplateTest, RendersTheJinjaChatTemplatesUse) {
  const std::string messages =
      R"({"messages": [{"role": "system", "content": " Be brief. "},
                       {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "Hello!"}],
          "add_generation_prompt": true, "bos_token": "<s>"})";
  EXPECT_EQ(Render("{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m['content'] | trim }}"
                   "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
                   messages),
            "<s><system>Be brief.<user>Hi<assistant>Hello!<assistant>");
  // loop variables, slices, namespaces, conditional expressions, tests.
  EXPECT_EQ(Render("{% set ns = namespace(n=0) %}{% for m in messages[1:] %}{{ loop.index0 }}"
                   "{{ ',' if not loop.last else '.' }}{% set ns.n = ns.n + 1 %}{% endfor %}"
                   "{{ ns.n }}{{ messages[-1].content[::-1] }}{{ x is defined }}"
                   "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}",
                   messages),
            "0,1.2!olleHFalse1");
  // Whitespace control and transformers' trim_blocks / lstrip_blocks.
  EXPECT_EQ(Render("a\n  {% if true %}\n  b\n  {%- endif %}\n{{- ' c' }}\n", "{}"), "a\n  b c");
  // tojson as Python's json.dumps(ensure_ascii=False), with indent.
  EXPECT_EQ(
      Render(R"({{ {"a": [1, "é\n"], "b": none} | tojson }}|{{ [1] | tojson(indent=2) }})", "{}"),
      "{\"a\": [1, \"é\\n\"], \"b\": null}|[\n  1\n]");
  // Macros, set blocks, string methods, items().
  EXPECT_EQ(
      Render("{% macro m(x, y='!') %}[{{ x }}{{ y }}]{% endmacro %}{{ m('a') }}{{ m('b', y='?') }}"
             "{% set s %}in{{ 1 + 2 }}{% endset %}{{ s }}{{ ' x y '.split() }}"
             "{% for k, v in {'p': 1}.items() %}{{ k }}={{ v }}{% endfor %}",
             "{}"),
      "[a!][b?]in3['x', 'y']p=1");
}

TEST(ChatTemplateTest, ErrorsNameTheLineAndTheConstruct) {
  EXPECT_EQ(Render("ok\n{{ messages | wordwrap }}", R"({"messages": "x"})"),
            "RENDER: chat_template: line 2: filter 'wordwrap' is not supported");
  EXPECT_EQ(Render("\n\n{{ x | tojson(sort_keys=true) }}", "{}"),
            "RENDER: chat_template: line 3: filter 'tojson' with argument 'sort_keys' is not "
            "supported");
  EXPECT_EQ(Render("{% include 'other.jinja' %}", "{}"),
            "PARSE: chat_template: line 1: statement 'include' is not supported");
  EXPECT_EQ(Render("{% if x %}never closed", "{}"),
            "PARSE: chat_template: line 1: '{% endif %}' is missing");
  EXPECT_EQ(Render("{{ 'a' ", "{}"), "PARSE: chat_template: line 1: tag is not closed with '}}'");
  EXPECT_EQ(Render("{{ raise_exception('roles must alternate') }}", "{}"),
            "RENDER: chat_template: line 1: raise_exception: roles must alternate");
  EXPECT_EQ(Render("{{ strftime_now('%d %b %Y') }}", "{}"),
            "RENDER: chat_template: line 1: function 'strftime_now' is not defined (a prompt "
            "must not depend on the clock)");
  EXPECT_EQ(Render("{{ 'a'.zfill(3) }}", "{}"),
            "RENDER: chat_template: line 1: string method 'zfill' is not supported");
  EXPECT_EQ(Render("{{ x is prime }}", "{}"),
            "RENDER: chat_template: line 1: test 'prime' is not supported");
  EXPECT_EQ(Render("{{ 1 - 'a' }}", "{}"),
            "RENDER: chat_template: line 1: operator '-' between a integer and a string is not "
            "supported");
  EXPECT_EQ(Render("{{ 'a' }}", "[1]"), "RENDER: chat template context: not a JSON object");
}

TEST(ChatTemplateTest, RenderTakesTypedMessages) {
  Result<ChatTemplate> t = ChatTemplate::Parse(
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}"
      "{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}");
  ASSERT_TRUE(t.ok());
  ChatTemplateInputs in;
  in.messages = {{"user", "{{ not a tag }}"}, {"assistant", "ok"}};
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  EXPECT_EQ(*t->Render(in), "<s>[user]{{ not a tag }}</s>[assistant]ok</s>[assistant]");
  in.add_generation_prompt = false;
  EXPECT_EQ(*t->Render(in), "<s>[user]{{ not a tag }}</s>[assistant]ok</s>");
}

}  // namespace
}  // namespace lockstep::runtime
