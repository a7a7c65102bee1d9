#!/usr/bin/env python3
"""Writes tests/fixtures/chat_templates/expected.json: what jinja2 renders for each chat template
in tests/fixtures/chat_templates/*.jinja on a set of conversations, and for a set of small
feature templates, in the environment transformers renders chat templates in
(transformers.utils.chat_template_utils._compile_jinja_template):

    ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                  extensions=[jinja2.ext.loopcontrols])
    + tojson = json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)
    + raise_exception(msg), strftime_now(fmt), namespace (no "_" names), dict

strftime_now formats a fixed time (FIXED_NOW) so that the expectations are reproducible; the
C++ side gets the same time through chat_template_tool --now.

Each case: {"name", "template" (a file in the folder) or "source" (inline template text),
"context", and "expected" (the rendering) or "error" (jinja2's exception message) with
"error_kind": "runtime" (squeeze's message must contain jinja2's) or "syntax" (squeeze must
report a syntax error; the wording differs)}. When transformers is installed, every rendering is also
checked against transformers' own compiled template.

Usage: .venv/bin/python scripts/make_chat_template_fixtures.py
"""
import datetime
import json
import pathlib
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDER = ROOT / "tests" / "fixtures" / "chat_templates"
FIXED_NOW = datetime.datetime(2026, 1, 15, 10, 30, 45)
FIXED_NOW_ARG = FIXED_NOW.strftime("%Y-%m-%d %H:%M:%S")

sys.path.insert(0, str(FOLDER))
from feature_cases import FEATURE_CASES  # noqa: E402  (small templates, one language feature each)


# ---- the transformers-like environment (written from transformers' documented behaviour) ----

class TemplateNamespace(jinja2.utils.Namespace):
    """namespace() that refuses underscore-prefixed attributes, as transformers' does."""

    def __init__(*args, **kwargs):
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            TemplateNamespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        TemplateNamespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name):
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"Chat templates cannot store underscore-prefixed attributes on a namespace, but got {name!r}. "
                "Please rename the attribute.")


def make_environment():
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = lambda *args, **kwargs: dict(*args, **kwargs)
    env.globals["namespace"] = TemplateNamespace
    return env


ENV = make_environment()


SYNTAX_ERRORS = (jinja2.exceptions.TemplateSyntaxError, SyntaxError)


def render(source, context):
    """(output, None, None) or (None, error message, "syntax" or "runtime")."""
    try:
        template = ENV.from_string(source)
    except SYNTAX_ERRORS as e:
        return None, str(e), "syntax"
    except Exception as e:  # noqa: BLE001 - e.g. an unknown filter, which squeeze finds when it runs
        return None, str(e), "runtime"
    try:
        return template.render(**context), None, None
    except Exception as e:  # noqa: BLE001 - every template error is an expected outcome here
        return None, str(e), "runtime"


def transformers_render(source, context):
    """The same through transformers' compiled template, or None without transformers."""
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:
        return None
    try:
        compiled = _compile_jinja_template(source)
        compiled.globals["strftime_now"] = lambda fmt: FIXED_NOW.strftime(fmt)
        return compiled.render(**context), None
    except Exception as e:  # noqa: BLE001
        return None, str(e)


# ---- conversations ----

TOKENS = {
    "gemma": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "mistral": {"bos_token": "<s>", "eos_token": "</s>"},
}

TEMPLATES = {  # file -> token family and what the template supports
    "google-gemma-3-it.jinja": ("gemma", {"system", "parts"}),
    "google-gemma-2-2b-it.jinja": ("gemma", set()),
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ("llama3", {"system", "tools", "builtin_tools"}),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ("llama3", {"system", "tools"}),
    "meta-llama-Llama-3.3-70B-Instruct.jinja": ("llama3", {"system", "tools", "builtin_tools"}),
    "Qwen-Qwen2.5-7B-Instruct.jinja": ("qwen", {"system", "tools"}),
    "Qwen-Qwen3-0.6B.jinja": ("qwen", {"system", "tools", "reasoning"}),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ("mistral", {"system", "tools"}),
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": ("mistral", {"system", "tools", "parts"}),
    # More real templates, for the language features they lean on: macros and tool schemas
    # (Hermes 3, Qwen3-Coder, gpt-oss), Markup from |safe (functionary), strftime (Granite,
    # SmolLM3), reasoning (DeepSeek-R1 distill).
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja": ("llama3", {"system", "tools"}),
    "meetkai-functionary-medium-v3.1.jinja": ("llama3", {"system", "tools"}),
    "openai-gpt-oss-120b.jinja": ("qwen", {"system", "tools", "reasoning"}),
    "Qwen3-Coder.jinja": ("qwen", {"system", "tools"}),
    "microsoft-Phi-3.5-mini-instruct.jinja": ("mistral", {"system"}),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": ("mistral", {"system", "tools", "reasoning"}),
    "HuggingFaceTB-SmolLM3-3B.jinja": ("qwen", {"system", "tools", "reasoning"}),
    "ibm-granite-granite-3.3-2B-Instruct.jinja": ("qwen", {"system", "tools"}),
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city, in Celsius or \"Fahrenheit\".",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich or 東京"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "precision": {"type": "number", "default": 0.5},
            },
            "required": ["city"],
        },
        "return": {"type": "object"},
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.\nReturns the top results.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}

UNICODE_TEXT = ("  Héllo wörld — \"quoted\" and 'single' \\ backslash\ttab\nnew line 日本語 🙂👍🏽 "
                "\u200b zero-width, \u00a0nbsp, <|im_end|> [INST] {{ not_jinja }}  \n")


def ctx(family, messages, add_generation_prompt, tools=None, with_tools_key=True, **extra):
    c = {"messages": messages}
    if with_tools_key:
        c["tools"] = tools
        c["documents"] = None
    c["add_generation_prompt"] = add_generation_prompt
    c.update(TOKENS[family])
    c.update(extra)
    return c


def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


def s(text):
    return {"role": "system", "content": text}


def conversation_cases(file, family, features):
    cases = []

    def add(name, context):
        cases.append({"name": f"{file.removesuffix('.jinja')}/{name}", "template": file, "context": context})

    add("user", ctx(family, [u("Hello!")], True))
    add("user_no_gen", ctx(family, [u("Hello!")], False))
    add("multi_turn", ctx(family, [u("Hi"), a("Hello, how can I help?"), u("What is 2+2?"), a("4")], False))
    add("multi_turn_gen", ctx(family, [u("Hi"), a("Hello!"), u("Tell me a joke.")], True))
    add("unicode", ctx(family, [u(UNICODE_TEXT), a(UNICODE_TEXT), u("  spaces around  ")], True))
    add("empty_content", ctx(family, [u(""), a(""), u("x")], True))
    add("no_tools_key", ctx(family, [u("Hello!")], True, with_tools_key=False))
    add("roles_not_alternating", ctx(family, [u("one"), u("two")], True))
    add("assistant_first", ctx(family, [a("I start."), u("ok")], True))
    add("empty_messages", ctx(family, [], True))
    add("unknown_role", ctx(family, [u("Hi"), {"role": "narrator", "content": "Meanwhile..."}], True))
    if "system" in features:
        add("system_user", ctx(family, [s("You are a helpful assistant."), u("Hello!")], True))
        add("system_multi_turn", ctx(family, [s("Be brief.\n"), u("Hi"), a("Hello."), u("Bye")], True))
    else:
        add("system_rejected", ctx(family, [s("You are a helpful assistant."), u("Hello!")], True))
    parts_user = {"role": "user", "content": [{"type": "text", "text": " Describe this: "}, {"type": "image"},
                                              {"type": "text", "text": "Thanks!\n"}]}
    parts_assistant = {"role": "assistant", "content": [{"type": "text", "text": "It is a cat."}]}
    add("content_parts", ctx(family, [parts_user, parts_assistant, u("more")], True))
    if "parts" in features:
        add("system_parts", ctx(family, [{"role": "system", "content": [{"type": "text", "text": "Sys parts"}]},
                                         u("Hello")], True))
    if "tools" in features:
        call = {"role": "assistant", "content": None if family != "qwen" else "",
                "tool_calls": [{"id": "call12345", "type": "function",
                                "function": {"name": "get_weather",
                                             "arguments": {"city": "Zürich", "days": 3, "precision": 0.25,
                                                           "exact": 1e-07, "big": 1e16, "whole": 2.0,
                                                           "flag": True, "none": None, "list": [1, "two", 3.5]}}}]}
        result = {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
                  "content": "{\"temperature\": 21.5, \"sky\": \"clear ☀\"}"}
        add("tools_offered", ctx(family, [s("You can use tools."), u("Weather in Zürich?")], True,
                                 tools=[WEATHER_TOOL, SEARCH_TOOL]))
        add("tools_no_system", ctx(family, [u("Weather in Zürich?")], True, tools=[WEATHER_TOOL]))
        add("tool_call_round_trip", ctx(family, [u("Weather in Zürich?"), call, result, a("It is 21.5 °C.")], False,
                                        tools=[WEATHER_TOOL, SEARCH_TOOL]))
        add("tool_call_pending", ctx(family, [u("Weather?"), call, result], True, tools=[WEATHER_TOOL]))
        two_calls = json.loads(json.dumps(call))
        two_calls["tool_calls"].append({"id": "call67890", "type": "function",
                                        "function": {"name": "search", "arguments": {"query": "news"}}})
        add("two_tool_calls", ctx(family, [u("Both?"), two_calls, result,
                                           dict(result, tool_call_id="call67890", content="no news")], True,
                                  tools=[WEATHER_TOOL, SEARCH_TOOL]))
        bad_id = json.loads(json.dumps(call))
        bad_id["tool_calls"][0]["id"] = "short"
        add("tool_call_bad_id", ctx(family, [u("Weather?"), bad_id, dict(result, tool_call_id="short")], True,
                                    tools=[WEATHER_TOOL]))
        string_args = json.loads(json.dumps(call))
        string_args["tool_calls"][0]["function"]["arguments"] = "{\"city\": \"Paris\"}"
        add("tool_call_string_arguments", ctx(family, [u("Weather?"), string_args], False, tools=[WEATHER_TOOL]))
    if family == "llama3":
        add("tools_in_system", ctx(family, [s("Sys"), u("Weather?")], True, tools=[WEATHER_TOOL],
                                   tools_in_user_message=False))
        add("date_string", ctx(family, [u("Today?")], True, date_string="01 Feb 2025"))
        add("tools_without_user", ctx(family, [s("Sys")], True, tools=[WEATHER_TOOL]))
        add("tool_content_mapping", ctx(family, [u("x"), {"role": "ipython", "content": {"result": [1, 2]}}], True))
    if "builtin_tools" in features:
        builtin_call = {"role": "assistant", "tool_calls": [{"type": "function", "function": {
            "name": "brave_search", "arguments": {"query": "weather \"today\"", "lang": "en"}}}]}
        add("builtin_tools", ctx(family, [s("Sys"), u("Search it"), builtin_call,
                                          {"role": "ipython", "content": "sunny"}], True,
                                 builtin_tools=["brave_search", "code_interpreter", "wolfram_alpha"]))
    if "reasoning" in features:
        add("reasoning_content", ctx(family, [u("2+2?"), dict(a("4"), reasoning_content="\nAdd them.\n"),
                                              u("3+3?")], True))
        add("reasoning_last_turn", ctx(family, [u("2+2?"), dict(a("4"), reasoning_content="Add.")], False))
        add("think_in_content", ctx(family, [u("Q"), a("<think>\nhmm\n</think>\n\nAnswer"), u("Q2"),
                                             a("<think>ok</think>A2")], False))
        add("enable_thinking_false", ctx(family, [u("Hi")], True, enable_thinking=False))
        add("enable_thinking_true", ctx(family, [u("Hi")], True, enable_thinking=True))
        add("tool_response_as_user", ctx(family, [u("x"), u("<tool_response>\nr\n</tool_response>")], True))
    return cases


def main():
    cases = []
    for file, (family, features) in TEMPLATES.items():
        cases += conversation_cases(file, family, features)
    for name, source, context in FEATURE_CASES:
        cases.append({"name": f"feature/{name}", "source": source, "context": context})

    mismatches = 0
    for case in cases:
        source = (FOLDER / case["template"]).read_text() if "template" in case else case["source"]
        out, err, kind = render(source, case["context"])
        if err is None:
            case["expected"] = out
        else:
            case["error"] = err
            case["error_kind"] = kind
        reference = transformers_render(source, case["context"])
        if reference is not None and reference != (out, err):
            mismatches += 1
            print(f"transformers disagrees on {case['name']}: {reference!r} vs {(out, err)!r}", file=sys.stderr)
    if mismatches:
        sys.exit(f"{mismatches} cases differ from transformers")

    doc = {"now": FIXED_NOW_ARG, "jinja2": jinja2.__version__, "cases": cases}
    path = FOLDER / "expected.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    n_err = sum("error" in c for c in cases)
    print(f"wrote {path.relative_to(ROOT)}: {len(cases)} cases ({n_err} expect errors)")


if __name__ == "__main__":
    main()
