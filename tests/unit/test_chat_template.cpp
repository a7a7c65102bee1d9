// ChatTemplate unit tests: the Jinja features chat templates use, error reporting, and the
// limits that keep untrusted templates from crashing or hanging. Byte-for-byte parity with
// jinja2 on real model templates is tested by tests/reference/test_chat_template.py.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tokenizer/chat_template.h"
#include "util/error.h"

using namespace squeeze;
using ojson = nlohmann::ordered_json;

namespace {

std::string render(const std::string& source, const ojson& context = ojson::object(), ChatTemplateOptions options = {}) {
  return ChatTemplate(source).render(context, options);
}

// The message of the Error that rendering throws ("" when it renders).
std::string error_of(const std::string& source, const ojson& context = ojson::object(), ChatTemplateOptions options = {}) {
  try {
    render(source, context, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

ojson chat() {
  return ojson::parse(R"({"messages": [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": "Hello"}],
                          "add_generation_prompt": true, "bos_token": "<s>"})");
}

std::string read_fixture(const std::string& name) {
  std::ifstream f(std::string(SQUEEZE_SOURCE_DIR) + "/tests/fixtures/chat_templates/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST(ChatTemplate, TextAndExpressions) {
  EXPECT_EQ(render("plain text"), "plain text");
  EXPECT_EQ(render("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 / 2 }}|{{ 2 ** 8 }}|{{ -7 % 3 }}"), "7|3|-4|3.5|256|2");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }}|{{ 'ab' * 2 }}|{{ [1] + [2] }}"), "a1None|abab|[1, 2]");
  EXPECT_EQ(render("{{ 1.0 }} {{ 1e16 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ true }} {{ none }}"),
            "1.0 1e+16 1e-05 0.30000000000000004 True None");
  EXPECT_EQ(render("{{ 'y' if 1 < 2 < 3 else 'n' }}{{ 'z' if false }}"), "y");
  EXPECT_EQ(render("{{ 0 or 'x' }}{{ 'a' and 'b' }}{{ not [] }}"), "xbTrue");
}

TEST(ChatTemplate, WhitespaceControlMatchesTrimAndLstripBlocks) {
  // trim_blocks eats the newline after a block tag; lstrip_blocks the indentation before it.
  EXPECT_EQ(render("{% if true %}\n  A\n  {% endif %}\nB"), "  A\nB");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a\n  {{- 'x' -}}\n  b"), "axb");
  EXPECT_EQ(render("  {{ 'v' }}"), "  v");  // lstrip_blocks leaves {{ }} alone
  EXPECT_EQ(render("  {%+ if true %}x{% endif +%}\ny"), "  x\ny");
  EXPECT_EQ(render("a\n  {# note #}\nb"), "a\nb");
  EXPECT_EQ(render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
  EXPECT_EQ(render("x\r\n{% if true %}\r\ny\r\n{% endif %}\r\n"), "x\ny\n");
  EXPECT_EQ(render("x\n"), "x");  // one trailing newline is dropped, as keep_trailing_newline=False
}

TEST(ChatTemplate, LoopVariablesElseAndControl) {
  ojson ctx = {{"xs", {"a", "b", "c"}}};
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }}{{ x }};{% endfor %}", ctx),
            "103TrueFalse3a;212FalseFalse3b;321FalseTrue3c;");
  EXPECT_EQ(render("{% for x in xs if x != 'b' %}{{ x }}{{ loop.length }}{% endfor %}", ctx), "a2c2");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(render("{% for i in range(9) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}"
                   "{{ i }}{% endfor %}"), "023");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{% for x in xs[::-1] %}{{ loop.cycle('+', '-') }}{{ x }}{% endfor %}", ctx), "+c-b+a");
}

TEST(ChatTemplate, ScopingAndNamespaces) {
  // A set inside a loop stays in that iteration; a namespace carries values out.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in range(3) %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "6");
  EXPECT_EQ(render("{% if true %}{% set y = 2 %}{% endif %}{{ y }}"), "2");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set s %} inner {% endset %}[{{ s }}]"), "[ inner ]");
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns._hidden = 1 %}").find("underscore-prefixed"), std::string::npos);
  EXPECT_NE(error_of("{% set x = 1 %}{% set x.a = 1 %}").find("non-namespace"), std::string::npos);
}

TEST(ChatTemplate, Macros) {
  EXPECT_EQ(render("{% macro m(a, b='!') %}{{ a }}{{ b }}{% endmacro %}{{ m('x') }}{{ m('y', b='?') }}"), "x!y?");
  EXPECT_EQ(render("{% macro f(n) %}{% if n %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
  EXPECT_NE(error_of("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}").find("takes not more than 1 argument"), std::string::npos);
}

TEST(ChatTemplate, FiltersAndMethods) {
  ojson ctx = ojson::parse(R"({"msgs": [{"role": "user", "content": " a "}, {"role": "assistant", "content": "b"}],
                              "d": {"z": 1, "a": [1.5, "x", null, true]}})");
  EXPECT_EQ(render("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | map('trim') | list }}", ctx), "['a']");
  EXPECT_EQ(render("{{ d | tojson }}|{{ d | tojson(indent=2) }}", ctx),
            "{\"z\": 1, \"a\": [1.5, \"x\", null, true]}|{\n  \"z\": 1,\n  \"a\": [\n    1.5,\n    \"x\",\n    null,\n    true\n  ]\n}");
  EXPECT_EQ(render("{{ d }}", ctx), "{'z': 1, 'a': [1.5, 'x', None, True]}");
  EXPECT_EQ(render("{{ 'é\"\\n' | tojson }}{{ 'é' | tojson(ensure_ascii=true) }}"), "\"é\\\"\\n\"\"\\u00e9\"");
  EXPECT_EQ(render("{{ '  x  ' | trim }}|{{ 'ab' | upper }}|{{ [3, 1, 2] | sort | join(',') }}|{{ 'a-b' | replace('-', '+') }}"),
            "x|AB|1,2,3|a+b");
  EXPECT_EQ(render("{{ ' a<b>c '.strip().split('b') }}|{{ 'x'.startswith(('y', 'x')) }}|{{ d.get('q', 'dflt') }}", ctx),
            "['a<', '>c']|True|dflt");
  EXPECT_EQ(render("{{ 'hé🙂'[1] }}{{ 'hé🙂' | length }}{{ 'hé🙂'[::-1] }}"), "é3🙂éh");
  EXPECT_EQ(render("{{ '<b>' | safe + '<i>' }}"), "<b>&lt;i&gt;");  // Markup escapes what is added to it
}

TEST(ChatTemplate, UndefinedBehavesLikeJinja2Undefined) {
  ojson ctx = {{"d", {{"a", 1}}}};
  EXPECT_EQ(render("[{{ missing }}][{{ d.nope }}][{{ d['nope'] }}]", ctx), "[][][]");
  EXPECT_EQ(render("{{ missing is defined }}{{ d.a is defined }}{{ missing is undefined }}{{ missing | default('x') }}", ctx),
            "FalseTrueTruex");
  EXPECT_EQ(render("{% for x in missing %}x{% endfor %}{{ missing | length }}"), "0");
  EXPECT_NE(error_of("{{ missing.attr }}").find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ d.nope.x }}", ctx).find("'dict object' has no attribute 'nope'"), std::string::npos);
  EXPECT_NE(error_of("{{ missing + 1 }}").find("'missing' is undefined"), std::string::npos);
}

TEST(ChatTemplate, ErrorsCarryLineNumbers) {
  EXPECT_EQ(error_of("a\nb\n{{ 1 +* 2 }}"), "chat template syntax error at line 3, column 7: unexpected '*'");
  EXPECT_NE(error_of("{% if x %}\nno end").find("syntax error at line 2"), std::string::npos);
  EXPECT_NE(error_of("{% frob %}").find("unknown tag 'frob'"), std::string::npos);
  EXPECT_EQ(error_of("line 1\n{{ 'a' + 1 }}"), "chat template error at line 2: can only concatenate str (not \"int\") to str");
  EXPECT_NE(error_of("{{ x | nosuchfilter }}").find("No filter named 'nosuchfilter'"), std::string::npos);
}

TEST(ChatTemplate, RaiseExceptionMessageIsKeptVerbatim) {
  EXPECT_EQ(error_of("{% if true %}{{ raise_exception('Roles must alternate user/assistant!') }}{% endif %}"),
            "Roles must alternate user/assistant!");
}

TEST(ChatTemplate, StrftimeNowUsesTheGivenTime) {
  ChatTemplateOptions options;
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 15;
  tm.tm_wday = 4;
  options.now = tm;
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y, %A') }}", ojson::object(), options), "15 Jan 2026, Thursday");
}

TEST(ChatTemplate, DictOrderFollowsTheJsonType) {
  const char* text = R"({"d": {"b": 1, "a": 2}})";
  ChatTemplate t("{% for k in d %}{{ k }}{% endfor %}");
  EXPECT_EQ(t.render(ojson::parse(text)), "ba");                  // insertion order, as Python dicts
  EXPECT_EQ(t.render(nlohmann::json::parse(text)), "ab");         // nlohmann::json sorted its keys
}

TEST(ChatTemplate, ContextValues) {
  EXPECT_EQ(render("{{ n }} {{ big }} {{ f }}", ojson::parse(R"({"n": -3, "big": 18446744073709551615, "f": 2.0})")),
            "-3 1.8446744073709552e+19 2.0");
  ojson bad_utf8 = {{"s", std::string("a\xff" "b")}};
  EXPECT_EQ(render("{{ s | length }}", bad_utf8), "3");  // invalid bytes become U+FFFD
  EXPECT_NE(error_of("{{ x }}", ojson::parse("[1]")).find("must be a JSON object"), std::string::npos);
  std::string deep = std::string(1000, '[') + std::string(1000, ']');
  EXPECT_NE(error_of("{{ x }}", ojson{{"x", ojson::parse(deep)}}).find("nests more than"), std::string::npos);
}

TEST(ChatTemplate, RealTemplateRenders) {
  ChatTemplate gemma(read_fixture("google-gemma-3-it.jinja"));
  EXPECT_EQ(gemma.render(chat()),
            "<s><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
            "<start_of_turn>model\n");
  ojson bad = chat();
  bad["messages"].push_back({{"role", "assistant"}, {"content", "again"}});
  try {
    gemma.render(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Conversation roles must alternate user/assistant/user/assistant/...");
  }
}

TEST(ChatTemplate, MalformedTemplatesThrowError) {
  const char* sources[] = {
      "{{", "{%", "{#", "{{ }}", "{% %}", "{% if %}", "{% for %}", "{% for x %}", "{% for x in %}{% endfor %}",
      "{% endif %}", "{% else %}", "{% set %}", "{% set x %}", "{% macro %}", "{% macro m( %}", "{{ (1 }}",
      "{{ [1, }}", "{{ {1: }}", "{{ 'unterminated }}", "{{ 1 2 }}", "{{ a.. }}", "{{ a[ }}", "{{ a | }}",
      "{{ a is }}", "{{ x if }}", "{% raw %}never ends", "{{ '\\x4' }}", "{{ '\\N{DASH}' }}", "{{ 99999999999999999999 }}",
      "{% include 'x' %}", "{% extends 'x' %}", "{% call m() %}{% endcall %}", "{% for x in y recursive %}{% endfor %}",
      "{{ f(*args) }}", "{% break %}", "{% macro m() %}{% continue %}{% endmacro %}", "{{ ) }}", "\xff\xfe", "{{ 1 }", "{% if 1 %}{% elif %}{% endif %}",
  };
  for (const char* src : sources) {
    try {
      ChatTemplate t(src);
      t.render(ojson::object());
      ADD_FAILURE() << "no error for " << src;
    } catch (const Error&) {
    }
  }
}

TEST(ChatTemplate, HostileTemplatesHitLimitsInsteadOfHanging) {
  ChatTemplateOptions budget;
  budget.max_work = uint64_t(1) << 24;  // the default allows ~0.5 s; keep the test quick
  EXPECT_NE(error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", ojson::object(), budget)
                .find("work limit"),
            std::string::npos);
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("nests more than"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 10000000000 }}").find("would exceed"), std::string::npos);
  std::string doubling = error_of("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}");
  EXPECT_TRUE(doubling.find("would exceed") != std::string::npos || doubling.find("work limit") != std::string::npos) << doubling;
  EXPECT_NE(error_of("{{ range(1000000000) | length }}").find("Range too big"), std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nests more than"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}").find("nests more than"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '-') + "1 }}").find("nests more than"), std::string::npos);
  std::string nested_ifs;
  for (int i = 0; i < 500; i++) nested_ifs += "{% if true %}";
  EXPECT_NE(error_of(nested_ifs).find("nests more than"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(l=[]) %}{% for i in range(300) %}{% set ns.l = [ns.l] %}{% endfor %}")
                .find("nest more than"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.me = [ns] %}").find("namespace inside a namespace"), std::string::npos);
  ChatTemplateOptions small;
  small.max_output_bytes = 100;
  EXPECT_NE(error_of("{% for i in range(1000) %}xx{% endfor %}", ojson::object(), small).find("would exceed 100 bytes"),
            std::string::npos);
}

TEST(ChatTemplate, MutatedTemplatesNeverCrash) {
  // Random edits of a real template: every outcome must be a rendering or an Error.
  std::string base = read_fixture("Qwen-Qwen3-0.6B.jinja") + read_fixture("meta-llama-Llama-3.1-8B-Instruct.jinja");
  ASSERT_FALSE(base.empty());
  const std::string alphabet = "{}%#-+()[]'\".,|:=~*/ \n\\ainsetfordlopx0123";
  std::mt19937 rng(1234);
  ojson ctx = chat();
  ctx["tools"] = ojson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
  int rendered = 0, failed = 0;
  for (int iter = 0; iter < 300; iter++) {
    std::string src = base;
    int edits = 1 + int(rng() % 8);
    for (int e = 0; e < edits; e++) {
      size_t at = rng() % src.size();
      switch (rng() % 3) {
        case 0: src[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: src.erase(at, 1 + rng() % 20); break;
        default: src.insert(at, src.substr(rng() % src.size(), 1 + rng() % 40)); break;
      }
    }
    try {
      ChatTemplateOptions options;
      options.max_work = uint64_t(1) << 24;
      ChatTemplate(src).render(ctx, options);
      rendered++;
    } catch (const Error&) {
      failed++;
    }
  }
  EXPECT_EQ(rendered + failed, 300);
}

TEST(ChatTemplate, ConcurrentRendersOfOneTemplate) {
  ChatTemplate t(read_fixture("Qwen-Qwen2.5-7B-Instruct.jinja"));
  std::string expected = t.render(chat());
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int i = 0; i < 4; i++)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 50; k++) ok[size_t(i)] += t.render(chat()) == expected;
    });
  for (auto& th : threads) th.join();
  for (int n : ok) EXPECT_EQ(n, 50);
}
