#pragma once
// UTF-8 and byte-level helpers shared by the tokenizer algorithms. Input text may hold any bytes,
// so every function here is total: invalid sequences are reported, never read past the end.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace squeeze::tok {

constexpr uint32_t kReplacementChar = 0xFFFD;

// Length (1..4) of the well-formed UTF-8 sequence starting at s[0], or 0 when the bytes there do
// not start one (stray continuation byte, bad lead byte, overlong form, surrogate, > U+10FFFF,
// truncated sequence). The check is strict so that PCRE2 can run without its own UTF check.
size_t utf8_valid_len(const char* s, size_t n);

// The code point of a sequence utf8_valid_len accepted (len bytes at s).
uint32_t utf8_decode(const char* s, size_t len);

void utf8_append(std::string& out, uint32_t cp);

// Each byte that does not start a well-formed sequence becomes U+FFFD, one per byte, the way
// llama.cpp's unicode_cpts_from_utf8 treats invalid input. Returns the input when it is valid.
std::string utf8_sanitize(std::string_view text);
bool utf8_is_valid(std::string_view text);

// llama.cpp's SentencePiece character split: the length follows the lead byte's high bits only
// (continuation bytes are not checked), clipped to what is left of the text.
size_t spm_char_len(const char* s, size_t n);

// GPT-2's reversible byte <-> printable-character map: the byte-level BPE vocabularies spell
// every byte as one of 256 code points so that no token contains spaces or control bytes.
const std::string& byte_to_unicode(uint8_t b);  // UTF-8 of the mapped code point
int unicode_to_byte(uint32_t cp);               // the byte, or -1 if cp is not in the map
std::string bytes_to_unicode_string(std::string_view bytes);
// Reverses the map over a whole token; false (and out untouched) when a character is not in it.
bool unicode_string_to_bytes(std::string_view text, std::string& out);

// The byte of an SPM byte token spelled "<0xHH>", or -1 when the text has another form.
int parse_byte_token(std::string_view text);

}  // namespace squeeze::tok
