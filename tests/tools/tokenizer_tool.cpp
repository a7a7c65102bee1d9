// Batch driver for the tokenizer reference tests: loads one tokenizer, then tokenizes many texts
// in one process (hundreds of runs of `squeeze tokenize` under ASan would take minutes).
//
//   tokenizer_tool MODEL IN.json OUT.json   IN: ["<hex bytes>", ...]
//     OUT: {"info": {kind, n_vocab, bos, eos, add_bos, add_eos, eog, load_s},
//           "results": [{"special": ids, "plain": ids, "decoded": hex, "streamed": hex}, ...],
//           "pieces": {"<id>": [hex token_to_piece(id, false), hex token_to_piece(id, true)]}}
//     special = encode(add_special, parse_special), plain = encode(neither), decoded =
//     decode(plain), streamed = the pieces of plain through StreamDecoder; pieces: every id seen.
//   tokenizer_tool MODEL --time FILE        load and encode timings for one file's bytes
// MODEL is a .gguf file or a Hugging Face folder.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <string>

#include "format/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"

using json = nlohmann::json;
using namespace squeeze;

namespace {

std::unique_ptr<Tokenizer> load(const std::string& model) {
  struct stat st;
  if (::stat(model.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Tokenizer::from_hf_dir(model);
  auto f = GGUFFile::open(model);
  return Tokenizer::from_gguf(*f);
}

std::string from_hex(const std::string& h) {
  if (h.size() % 2) throw Error("odd hex length");
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) out += char(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

std::string to_hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: tokenizer_tool MODEL IN.json OUT.json | MODEL --time FILE\n");
    return 2;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto tok = load(argv[1]);
  double load_s = seconds_since(t0);

  if (std::string(argv[2]) == "--time") {
    std::string text = read_text_file(argv[3]);
    auto t1 = std::chrono::steady_clock::now();
    auto ids = tok->encode(text, true, true);
    double enc_s = seconds_since(t1);
    std::printf("{\"load_s\": %.4f, \"encode_s\": %.4f, \"bytes\": %zu, \"tokens\": %zu}\n", load_s,
                enc_s, text.size(), ids.size());
    return 0;
  }

  json in = json::parse(read_text_file(argv[2]));
  json results = json::array();
  std::set<int32_t> seen;
  for (const auto& h : in) {
    std::string text = from_hex(h.get<std::string>());
    json r;
    std::vector<int32_t> special = tok->encode(text, true, true);
    std::vector<int32_t> plain = tok->encode(text, false, false);
    r["special"] = special;
    r["plain"] = plain;
    seen.insert(special.begin(), special.end());
    seen.insert(plain.begin(), plain.end());
    r["decoded"] = to_hex(tok->decode(plain, false));
    StreamDecoder sd;
    std::string streamed;
    for (int32_t id : plain) streamed += sd.push(tok->token_to_piece(id, false));
    streamed += sd.flush();
    r["streamed"] = to_hex(streamed);
    results.push_back(std::move(r));
  }
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tok->n_vocab(); id++)
    if (tok->is_eog(id)) eog.push_back(id);
  json out;
  out["info"] = {{"kind", tok->kind()},         {"n_vocab", tok->n_vocab()},
                 {"bos", tok->bos_id()},        {"eos", tok->eos_id()},
                 {"add_bos", tok->add_bos()},   {"add_eos", tok->add_eos()},
                 {"eog", eog},                  {"load_s", load_s}};
  out["results"] = std::move(results);
  json pieces = json::object();
  for (int32_t id : seen)
    pieces[std::to_string(id)] = {to_hex(tok->token_to_piece(id, false)), to_hex(tok->token_to_piece(id, true))};
  out["pieces"] = std::move(pieces);
  std::ofstream(argv[3]) << out.dump();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_tool: error: %s\n", e.what());
    return 1;
  }
}
