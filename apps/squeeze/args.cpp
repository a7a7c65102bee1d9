#include "args.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "util/error.h"

namespace squeeze::cli {

Args::Args(std::string command, std::string usage_line, std::string description)
    : command_(std::move(command)), usage_(std::move(usage_line)), description_(std::move(description)) {}

void Args::value(const std::string& shrt, const std::string& lng, const std::string& meta,
                 const std::string& help, const std::string& def) {
  specs_.push_back({shrt, lng, meta, help, def, true});
  if (!def.empty()) values_[lng] = def;
}

void Args::flag(const std::string& shrt, const std::string& lng, const std::string& help) {
  specs_.push_back({shrt, lng, "", help, "", false});
}

const Args::Spec* Args::lookup(const std::string& name) const {
  for (const auto& s : specs_)
    if (name == s.lng || (!s.shrt.empty() && name == s.shrt)) return &s;
  return nullptr;
}

void Args::print_help() const {
  std::printf("usage: squeeze %s %s\n\n%s\n\noptions:\n", command_.c_str(), usage_.c_str(),
              description_.c_str());
  for (const auto& s : specs_) {
    std::string names = s.shrt.empty() ? "    " + s.lng : s.shrt + ", " + s.lng;
    if (s.takes_value) names += " " + s.meta;
    std::string help = s.help;
    if (!s.def.empty()) help += " (default: " + s.def + ")";
    std::printf("  %-28s %s\n", names.c_str(), help.c_str());
  }
  std::printf("  %-28s %s\n", "-h, --help", "show this help");
}

bool Args::parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      print_help();
      return false;
    }
    if (a == "--") {
      for (++i; i < argc; ++i) positional_.push_back(argv[i]);
      break;
    }
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (isdigit((unsigned char)a[1]) || a[1] == '.'))) {
      std::string name = a, inline_val;
      bool has_inline = false;
      if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = a.substr(0, eq);
        inline_val = a.substr(eq + 1);
        has_inline = true;
      }
      const Spec* s = lookup(name);
      if (!s) throw Error(fmt("unknown option '%s' (see 'squeeze %s --help')", name.c_str(), command_.c_str()));
      if (!s->takes_value) {
        if (has_inline) throw Error(fmt("option '%s' takes no value", s->lng.c_str()));
        values_[s->lng] = "1";
        continue;
      }
      if (has_inline) {
        values_[s->lng] = inline_val;
      } else {
        if (i + 1 >= argc) throw Error(fmt("option '%s' needs a value (%s)", name.c_str(), s->meta.c_str()));
        values_[s->lng] = argv[++i];
      }
      continue;
    }
    positional_.push_back(a);
  }
  return true;
}

bool Args::has(const std::string& lng) const { return values_.count(lng) > 0; }

std::string Args::str(const std::string& lng) const {
  auto it = values_.find(lng);
  return it == values_.end() ? std::string() : it->second;
}

long long Args::integer(const std::string& lng) const {
  std::string v = str(lng);
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno) throw Error(fmt("option '%s' needs an integer, got '%s'", lng.c_str(), v.c_str()));
  return x;
}

double Args::number(const std::string& lng) const {
  std::string v = str(lng);
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || errno) throw Error(fmt("option '%s' needs a number, got '%s'", lng.c_str(), v.c_str()));
  return x;
}

bool Args::on(const std::string& lng) const { return values_.count(lng) > 0; }

std::string default_model_path() {
  if (const char* env = std::getenv("SQUEEZE_MODEL"); env && *env) return env;
#ifdef SQUEEZE_DEFAULT_MODEL
  return SQUEEZE_DEFAULT_MODEL;
#else
  return "models/gemma-3-270m-q4_k_m.gguf";
#endif
}

}  // namespace squeeze::cli
