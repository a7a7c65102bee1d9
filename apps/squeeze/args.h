#pragma once
// A small flag parser shared by the subcommands: declare flags, parse, get typed values.
// Unknown flags, missing values and malformed numbers throw squeeze::Error.
#include <map>
#include <string>
#include <vector>

namespace squeeze::cli {

class Args {
 public:
  Args(std::string command, std::string usage_line, std::string description);

  // A flag taking a value ("-m", "--model"); short may be empty. def is shown in --help.
  void value(const std::string& shrt, const std::string& lng, const std::string& meta,
             const std::string& help, const std::string& def = "");
  // A boolean switch.
  void flag(const std::string& shrt, const std::string& lng, const std::string& help);

  // Returns false when --help was given (help already printed to stdout).
  bool parse(int argc, char** argv);

  bool has(const std::string& lng) const;  // given on the command line (or has a default)
  std::string str(const std::string& lng) const;
  long long integer(const std::string& lng) const;
  double number(const std::string& lng) const;
  bool on(const std::string& lng) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  struct Spec {
    std::string shrt, lng, meta, help, def;
    bool takes_value;
  };
  std::string command_, usage_, description_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  const Spec* lookup(const std::string& name) const;
  void print_help() const;
};

// The default model path (the Gemma 3 270M Q4_K_M file the setup command installs), or the
// SQUEEZE_MODEL environment variable when set.
std::string default_model_path();

}  // namespace squeeze::cli
