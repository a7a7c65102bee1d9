// Renders one chat template for the reference tests (tests/reference/test_chat_template.py):
//
//   chat_template_tool [--now "YYYY-MM-DD HH:MM:SS"] TEMPLATE [CONTEXT.json]
//
// TEMPLATE is a Jinja file; the context (a JSON object of template variables) comes from
// CONTEXT.json or stdin and keeps its key order. The rendering goes to stdout byte for byte;
// on an error the message goes to stderr and the exit status is 1. --now fixes the time
// strftime_now() sees, so that outputs can be compared with a reference rendered the same way.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tokenizer/chat_template.h"
#include "util/error.h"

using namespace squeeze;

namespace {

std::string read_all(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path);
  return read_all(f);
}

std::tm parse_now(const std::string& text) {
  std::tm tm{};
  int y, mo, d, h = 0, mi = 0, s = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &s) < 3)
    throw Error("--now wants \"YYYY-MM-DD HH:MM:SS\", got " + text);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t t = timegm(&tm);  // fills in the weekday and day of the year
  gmtime_r(&t, &tm);
  return tm;
}

int run(int argc, char** argv) {
  ChatTemplateOptions options;
  std::string paths[2];
  int n_paths = 0;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--now") == 0 && i + 1 < argc) options.now = parse_now(argv[++i]);
    else if (n_paths < 2) paths[n_paths++] = argv[i];
    else throw Error("usage: chat_template_tool [--now \"YYYY-MM-DD HH:MM:SS\"] TEMPLATE [CONTEXT.json]");
  }
  if (n_paths == 0) throw Error("usage: chat_template_tool [--now \"YYYY-MM-DD HH:MM:SS\"] TEMPLATE [CONTEXT.json]");
  ChatTemplate tmpl(read_file(paths[0]));
  std::string context_text = n_paths == 2 ? read_file(paths[1]) : read_all(std::cin);
  nlohmann::ordered_json context;
  try {
    context = nlohmann::ordered_json::parse(context_text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("bad context JSON: ") + e.what());
  }
  std::string out = tmpl.render(context, options);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
