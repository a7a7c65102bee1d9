// Tokenizer unit tests: StreamDecoder, SentencePiece byte fallback, special-token splitting,
// NFC, the regex wrapper and loader errors. Parity with HF on real vocabularies is tested by
// tests/reference/test_tokenizer.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "format/gguf.h"
#include "tokenizer/normalize.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "util/error.h"

using namespace squeeze;
using namespace squeeze::tok;
using Ids = std::vector<int32_t>;

namespace {

// A tiny SentencePiece vocabulary: specials, all 256 byte tokens, a few pieces with scores.
std::unique_ptr<Tokenizer> tiny_spm(bool add_space_prefix = true) {
  TokenizerSpec spec;
  Vocab& v = spec.vocab;
  auto add = [&](const std::string& t, float score, TokenType type) {
    v.tokens.push_back(t);
    v.scores.push_back(score);
    v.types.push_back(type);
    return int32_t(v.tokens.size() - 1);
  };
  add("<unk>", 0, TokenType::unknown);      // 0
  add("<s>", 0, TokenType::control);        // 1
  add("</s>", 0, TokenType::control);       // 2
  add("<ud>", 0, TokenType::user_defined);  // 3
  for (int b = 0; b < 256; b++) {           // 4..259
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 0, TokenType::byte);
  }
  add("\xE2\x96\x81", -1, TokenType::normal);        // 260 "▁"
  add("a", -2, TokenType::normal);                   // 261
  add("b", -3, TokenType::normal);                   // 262
  add("\xE2\x96\x81" "a", -4, TokenType::normal);    // 263 "▁a"
  add("ab", -5, TokenType::normal);                  // 264
  add("\xE2\x96\x81" "ab", -6, TokenType::normal);   // 265 "▁ab"
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  v.finalize(Vocab::SpecialRules::llama_cpp);
  spec.model = TokenizerSpec::Model::spm;
  spec.sanitize_utf8 = false;
  if (add_space_prefix) spec.normalizers.push_back(Normalizer::prepend(" "));
  spec.normalizers.push_back(Normalizer::replace(" ", "\xE2\x96\x81"));
  spec.prefix = {1};
  spec.add_bos = true;
  spec.decode_strip_space = add_space_prefix;
  spec.kind = "spm";
  return make_tokenizer(std::move(spec));
}

int32_t byte_id(uint8_t b) { return 4 + b; }

std::string fixture(const char* name) {
  return std::string(SQUEEZE_SOURCE_DIR) + "/tests/fixtures/vocab/" + name;
}

}  // namespace

TEST(TokenizerStream, EmojiSplitAcrossPieces) {
  StreamDecoder d;
  EXPECT_EQ(d.push("hi \xF0\x9F"), "hi ");
  EXPECT_EQ(d.push("\x98"), "");
  EXPECT_EQ(d.push("\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(d.flush(), "");
}

TEST(TokenizerStream, ByteAtATime) {
  const std::string text = "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x91\x8D\xE2\x80\x8D z";
  StreamDecoder d;
  std::string out;
  for (char c : text) out += d.push(std::string(1, c));
  out += d.flush();
  EXPECT_EQ(out, text);
}

TEST(TokenizerStream, InvalidBytesAreNotHeld) {
  StreamDecoder d;
  EXPECT_EQ(d.push("\xFF"), "\xFF");               // never valid
  EXPECT_EQ(d.push("\x80"), "\x80");               // stray continuation
  EXPECT_EQ(d.push("\xE2\x28"), "\xE2\x28");       // lead byte followed by ASCII
  EXPECT_EQ(d.push("\xF4\x90"), "\xF4\x90");       // would exceed U+10FFFF
  EXPECT_EQ(d.push("\xED\xA0"), "\xED\xA0");       // surrogate
  EXPECT_EQ(d.push("\xE0\x80"), "\xE0\x80");       // overlong
  EXPECT_EQ(d.push("\xC0\xAF"), "\xC0\xAF");       // overlong
  EXPECT_EQ(d.push("\xE2\x82"), "");               // could still become U+20AC
  EXPECT_EQ(d.push("A"), "\xE2\x82" "A");          // ...but did not
  EXPECT_EQ(d.push("\xC3"), "");
  EXPECT_EQ(d.flush(), "\xC3");                    // flush gives up what is held
  EXPECT_EQ(d.flush(), "");
}

TEST(TokenizerSpm, MergesByScoreWithDummyPrefix) {
  auto t = tiny_spm();
  EXPECT_EQ(t->encode("ab a", true, true), (Ids{1, 265, 263}));
  EXPECT_EQ(t->encode("ab a", false, false), (Ids{265, 263}));
  EXPECT_EQ(t->encode("", true, true), (Ids{1}));
  EXPECT_EQ(t->encode("", false, false), (Ids{}));
  EXPECT_EQ(t->decode({1, 265, 263}, false), "ab a");
  EXPECT_EQ(t->decode({1, 265, 263}, true), "<s> ab a");
}

TEST(TokenizerSpm, ByteFallback) {
  auto t = tiny_spm();
  // "é" is not a piece: its two UTF-8 bytes become byte tokens.
  EXPECT_EQ(t->encode("a\xC3\xA9", false, false), (Ids{263, byte_id(0xC3), byte_id(0xA9)}));
  // Invalid UTF-8 is kept byte for byte, so it decodes back exactly. llama.cpp sizes a
  // character by its lead byte alone, so 0xFF swallows the next two bytes: 'b' goes out as a
  // byte token too.
  Ids ids = t->encode("\xFF" "b\x80", false, false);
  EXPECT_EQ(ids, (Ids{260, byte_id(0xFF), byte_id('b'), byte_id(0x80)}));
  EXPECT_EQ(t->decode(ids, false), "\xFF" "b\x80");
  EXPECT_EQ(t->token_to_piece(byte_id(0xFF), false), "\xFF");
  EXPECT_EQ(t->token_to_piece(263, false), " a");
}

TEST(TokenizerSpecial, ControlOnlyWithParseSpecial) {
  auto t = tiny_spm(false);
  EXPECT_EQ(t->encode("a<s>b", false, true), (Ids{261, 1, 262}));
  // Without parse_special, "<s>" is text: '<', 's', '>' have no pieces, so bytes.
  EXPECT_EQ(t->encode("a<s>b", false, false),
            (Ids{261, byte_id('<'), byte_id('s'), byte_id('>'), 262}));
  // User-defined tokens are matched either way.
  EXPECT_EQ(t->encode("a<ud>b", false, false), (Ids{261, 3, 262}));
  EXPECT_EQ(t->encode("<ud><ud>", false, true), (Ids{3, 3}));
  EXPECT_EQ(t->token_to_piece(1, false), "");
  EXPECT_EQ(t->token_to_piece(1, true), "<s>");
  EXPECT_EQ(t->token_to_piece(3, false), "<ud>");
}

TEST(TokenizerSpecial, DummyPrefixAfterEverySpecialToken) {
  auto t = tiny_spm(true);
  // llama.cpp prefixes a space to every raw fragment (each one is first or follows a special).
  EXPECT_EQ(t->encode("a<s>a", false, true), (Ids{263, 1, 263}));
}

TEST(TokenizerSpecial, LongestCandidateFirstAndStrip) {
  TokenizerSpec spec;
  Vocab& v = spec.vocab;
  for (const char* s : {"x", "y", "ab", "bcd", "a", "b", "c", "d", " "}) v.tokens.push_back(s);
  v.types.assign(v.tokens.size(), TokenType::normal);
  v.types[2] = v.types[3] = TokenType::control;
  v.finalize(Vocab::SpecialRules::llama_cpp);
  v.rstrip[3] = 1;
  spec.model = TokenizerSpec::Model::bpe;
  spec.kind = "test";
  auto t = make_tokenizer(std::move(spec));
  // "bcd" is longer than "ab", so it is matched first even though "ab" starts earlier
  // (llama.cpp's order; HF's leftmost-longest match would pick "ab").
  EXPECT_EQ(t->encode("abcd", false, true), (Ids{4, 3}));
  EXPECT_EQ(t->encode("abcd  d", false, true), (Ids{4, 3, 7}));  // rstrip eats the spaces
  EXPECT_EQ(t->encode("abcd", false, false), (Ids{4, 5, 6, 7}));
}

TEST(TokenizerNfc, ComposesAndOrders) {
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                              // e + acute
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // Hangul L V T
  EXPECT_EQ(nfc("e\xCC\xA3\xCC\x82"), "\xE1\xBB\x87");                  // dot below, circumflex
  EXPECT_EQ(nfc("e\xCC\x82\xCC\xA3"), "\xE1\xBB\x87");                  // reordered first
  EXPECT_EQ(nfc("\xE2\x84\xA6"), "\xCE\xA9");                           // ohm sign -> omega
  EXPECT_EQ(nfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");           // exclusion stays split
  EXPECT_EQ(nfc("\xCC\x81" "abc"), "\xCC\x81" "abc");                   // leading mark
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
}

TEST(TokenizerRegex, MatchesAndEmptyMatches) {
  Regex re("a*");
  std::vector<std::pair<size_t, size_t>> m;
  re.find_all("baaacaa", m);
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{1, 4}, {5, 7}}));
  Regex letters("\\p{L}+");
  m.clear();
  letters.find_all("\xC3\xA9t\xC3\xA9 42 \xE6\x97\xA5", m);
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{0, 5}, {9, 12}}));
  EXPECT_THROW(Regex("(unclosed"), Error);
}

TEST(TokenizerGguf, LlamaSpmVocab) {
  auto f = GGUFFile::open(fixture("ggml-vocab-llama-spm.gguf"));
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_EQ(t->kind(), "spm");
  EXPECT_EQ(t->encode("Hello world", true, true), (Ids{1, 15043, 3186}));
  EXPECT_EQ(t->decode(t->encode(" Hello  world\n", true, true), false), " Hello  world\n");
  EXPECT_TRUE(t->is_eog(2));
  EXPECT_FALSE(t->is_eog(1));
}

TEST(TokenizerGguf, Phi3StripsAfterSpecialTokens) {
  auto f = GGUFFile::open(fixture("ggml-vocab-phi-3.gguf"));
  auto t = Tokenizer::from_gguf(*f);
  int32_t end = t->find_token("<|end|>");
  ASSERT_GE(end, 0);
  EXPECT_TRUE(t->is_eog(end));
  // The spaces after <|end|> are dropped; the next fragment still gets its dummy prefix.
  EXPECT_EQ(t->encode("<|end|>   hi", false, true), t->encode("<|end|>hi", false, true));
}

TEST(TokenizerGguf, Gpt2ByteLevel) {
  auto f = GGUFFile::open(fixture("ggml-vocab-gpt-2.gguf"));
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_EQ(t->kind(), "bpe (gpt-2)");
  EXPECT_FALSE(t->add_bos());
  EXPECT_EQ(t->encode("Hello world", true, true), (Ids{15496, 995}));
  EXPECT_EQ(t->encode("<|endoftext|>", true, true), (Ids{50256}));
  // Invalid UTF-8 is read as U+FFFD (as llama.cpp does) and must not crash.
  EXPECT_FALSE(t->encode("\xFF\xC3", false, false).empty());
  EXPECT_EQ(t->decode(t->encode(" caf\xC3\xA9\t\n 42", false, false), false), " caf\xC3\xA9\t\n 42");
}

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("squeeze_tok_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
  void write(const char* name, const std::string& text) { std::ofstream(path / name) << text; }
};

const char* kTinyBpe =
    R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<eos>": 3},
        "merges": [["a", "b"]]},
        "added_tokens": [{"id": 3, "content": "<eos>", "special": true}],
        "normalizer": NORM, "pre_tokenizer": null, "post_processor": null, "decoder": null})";

std::string tiny_json(const std::string& norm) {
  std::string s = kTinyBpe;
  s.replace(s.find("NORM"), 4, norm);
  return s;
}

}  // namespace

TEST(TokenizerHfJson, LoadsAMinimalBpe) {
  TempDir d;
  d.write("tokenizer.json", tiny_json("null"));
  d.write("tokenizer_config.json", R"({"eos_token": "<eos>"})");
  auto t = Tokenizer::from_hf_dir(d.path.string());
  EXPECT_EQ(t->encode("abab<eos>a", false, true), (Ids{2, 2, 3, 0}));
  EXPECT_EQ(t->eos_id(), 3);
  EXPECT_TRUE(t->is_eog(3));
}

TEST(TokenizerHfJson, UnsupportedPartsAreErrors) {
  TempDir d;
  d.write("tokenizer.json", tiny_json(R"({"type": "NFKC"})"));
  try {
    Tokenizer::from_hf_dir(d.path.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("normalizer 'NFKC' is not supported"), std::string::npos)
        << e.what();
  }
  d.write("tokenizer.json", "{\"model\": ");
  EXPECT_THROW(Tokenizer::from_hf_dir(d.path.string()), Error);
  d.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})");
  EXPECT_THROW(Tokenizer::from_hf_dir(d.path.string()), Error);
  EXPECT_THROW(Tokenizer::from_hf_dir((d.path / "nope").string()), Error);
}
