// squeeze tokenize: prints the token ids of a text (or of a file's exact bytes) on one line, or
// one "id<TAB>piece" line per token with --pieces.
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <string>

#include "args.h"
#include "commands.h"
#include "format/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace squeeze::cli {

namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A piece as one printable line: C escapes for control bytes, \xHH for bytes that are not part
// of valid UTF-8, everything else as it is.
std::string escape_piece(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    auto c = uint8_t(s[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7F) out += fmt("\\x%02X", c);
    else if (c < 0x80) out += char(c);
    else {
      // Copy a whole well-formed multi-byte character, or escape the stray byte.
      size_t len = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
      bool ok = len && i + len <= s.size();
      for (size_t k = 1; ok && k < len; k++) ok = (uint8_t(s[i + k]) & 0xC0) == 0x80;
      if (ok) {
        out.append(s, i, len);
        i += len - 1;
      } else {
        out += fmt("\\x%02X", c);
      }
    }
  }
  return out;
}

}  // namespace

namespace {
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model) {
  if (is_dir(model)) return Tokenizer::from_hf_dir(model);
  auto file = GGUFFile::open(model);
  return Tokenizer::from_gguf(*file);
}
}  // namespace

int cmd_tokenize(int argc, char** argv) {
  Args args("tokenize", "[-m MODEL] [--no-special] [--pieces] [--file F | TEXT]",
            "Print the token ids of TEXT (or of the exact bytes of file F) on one line.\n"
            "MODEL is a .gguf file (full or vocabulary-only) or a Hugging Face folder with\n"
            "tokenizer.json. By default BOS/EOS are added as the model says and special-token\n"
            "text such as <start_of_turn> becomes its token.");
  args.value("-m", "--model", "MODEL", "model file or folder", default_model_path());
  args.value("-f", "--file", "F", "tokenize the bytes of this file instead of TEXT");
  args.flag("", "--no-special", "add no BOS/EOS and treat special-token text as plain text");
  args.flag("", "--pieces", "print one 'id<TAB>piece' line per token instead");
  if (!args.parse(argc, argv)) return 0;

  std::string text;
  const auto& pos = args.positional();
  if (args.has("--file")) {
    if (!pos.empty()) throw Error("give either --file or TEXT, not both");
    text = read_text_file(args.str("--file"));
  } else {
    if (pos.size() != 1)
      throw Error(pos.empty() ? "no text given (pass TEXT or --file F)"
                              : "give the text as one argument (quote it)");
    text = pos[0];
  }

  auto tok = load_tokenizer(args.str("--model"));
  bool special = !args.on("--no-special");
  std::vector<int32_t> ids = tok->encode(text, special, special);

  std::string out;
  if (args.on("--pieces")) {
    for (int32_t id : ids) out += fmt("%d\t", id) + escape_piece(tok->token_to_piece(id, true)) + "\n";
  } else {
    for (size_t i = 0; i < ids.size(); i++) out += (i ? " " : "") + std::to_string(ids[i]);
    out += "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace squeeze::cli
