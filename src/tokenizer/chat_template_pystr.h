#pragma once
// Python's str operations over UTF-8 text. Python strings index by code point and define
// whitespace, line breaks and printability by Unicode, so "hé"[1], " x\u3000".strip() and
// repr("\u200b") come out as in jinja2 only if we count and classify code points the same way.
// Every string here is valid UTF-8 (the template and the context are checked on the way in).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace squeeze::jinja::pystr {

// Code points of s, and the byte offset where each starts (plus s.size() at the end).
std::vector<uint32_t> code_points(std::string_view s);
std::vector<size_t> cp_offsets(std::string_view s);
size_t cp_count(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);

bool is_space(uint32_t cp);      // str.isspace()
bool is_printable(uint32_t cp);  // str.isprintable(), which repr() uses to pick escapes

// chars: the characters to strip; nullopt means whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// sep nullopt: split on whitespace runs, dropping empty pieces. maxsplit < 0: no limit.
// Throws Error for an empty separator.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
int64_t count(std::string_view s, std::string_view sub);
int64_t find(std::string_view s, std::string_view sub, bool reverse);  // code point index or -1

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()
bool is_lower(std::string_view s);           // str.islower()
bool is_upper(std::string_view s);           // str.isupper()

// repr(s): quoted with ' (or " when s holds ' but no "), non-printables escaped.
std::string repr(std::string_view s);
// A JSON string literal as Python's json.dumps writes it.
std::string json_quote(std::string_view s, bool ensure_ascii);
// markupsafe.escape: & < > " ' as entities.
std::string html_escape(std::string_view s);

// Python's int(s) and float(s) for strings; nullopt where Python raises ValueError.
std::optional<int64_t> parse_int(std::string_view s, int base);
std::optional<double> parse_float(std::string_view s);

}  // namespace squeeze::jinja::pystr
