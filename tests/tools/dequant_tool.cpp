// Test driver for the quant layer, used by tests/reference/test_dequant.py to compare squeeze's
// kernels with the gguf Python package on raw bytes.
//
//   dequant_tool TYPE_ID N IN.bin OUT.bin             dequantize N elements of raw blocks -> f32
//   dequant_tool --quantize-act TYPE_ID N IN.bin OUT.bin
//                                                     f32 -> activation format (F32/F16/BF16/
//                                                     Q8_0/Q8_1/Q8_K), raw blocks out
//   dequant_tool --vec-dot WTYPE N W.bin ACT.bin      prints vec_dot(W, quantize(ACT)) (%.9g)
//   dequant_tool --convert-range TYPE_ID START COUNT OUT.bin
//                                                     converts the f32 bit patterns START ..
//                                                     START+COUNT-1 to TYPE_ID (1 = f16,
//                                                     30 = bf16); for exhaustive rounding checks
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "quant/dequantize.h"
#include "quant/ggml_type.h"
#include "quant/vec_dot.h"
#include "util/error.h"
#include "util/fp16.h"

using namespace squeeze;

namespace {

std::vector<uint8_t> read_file(const char* path) {
  FILE* f = std::fopen(path, "rb");
  if (!f) throw Error(fmt("cannot open %s: %s", path, std::strerror(errno)));
  std::vector<uint8_t> data;
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + got);
  std::fclose(f);
  return data;
}

void write_file(const char* path, const void* data, size_t n) {
  FILE* f = std::fopen(path, "wb");
  if (!f) throw Error(fmt("cannot create %s: %s", path, std::strerror(errno)));
  const bool ok = std::fwrite(data, 1, n, f) == n;
  if (std::fclose(f) != 0 || !ok) throw Error(fmt("cannot write %s", path));
}

int64_t parse_int(const char* s) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 0);
  if (errno || end == s || *end || v < 0) throw Error(fmt("bad number '%s'", s));
  return v;
}

GGMLType parse_type(const char* s) {
  const TypeInfo* ti = type_info(uint32_t(parse_int(s)));
  if (!ti) throw Error(fmt("unknown ggml type id %s", s));
  return ti->type;
}

// Checks that a file holds exactly the bytes of n elements of type t.
void check_size(const std::vector<uint8_t>& data, GGMLType t, int64_t n, const char* what) {
  const TypeInfo& ti = type_info(t);
  if (n % ti.block_elems) throw Error(fmt("%lld is not a multiple of %s's block size", (long long)n, ti.name));
  if (data.size() != row_bytes(t, n))
    throw Error(fmt("%s: %zu bytes, expected %zu for %lld %s elements", what, data.size(),
                    row_bytes(t, n), (long long)n, ti.name));
}

int run(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "--quantize-act" && argc == 6) {
    const GGMLType t = parse_type(argv[2]);
    const int64_t n = parse_int(argv[3]);
    const std::vector<uint8_t> in = read_file(argv[4]);
    check_size(in, GGMLType::F32, n, argv[4]);
    std::vector<uint8_t> out(row_bytes(t, n));
    quantize_activation_row(t, reinterpret_cast<const float*>(in.data()), out.data(), n);
    write_file(argv[5], out.data(), out.size());
    return 0;
  }
  if (mode == "--vec-dot" && argc == 6) {
    const GGMLType t = parse_type(argv[2]);
    const int64_t n = parse_int(argv[3]);
    const std::vector<uint8_t> w = read_file(argv[4]);
    const std::vector<uint8_t> x = read_file(argv[5]);
    check_size(w, t, n, argv[4]);
    check_size(x, GGMLType::F32, n, argv[5]);
    const GGMLType at = vec_dot_type(t);
    std::vector<uint8_t> act(row_bytes(at, n));
    quantize_activation_row(at, reinterpret_cast<const float*>(x.data()), act.data(), n);
    std::printf("%.9g\n", double(vec_dot(t, w.data(), act.data(), n)));
    return 0;
  }
  if (mode == "--convert-range" && argc == 6) {
    const GGMLType t = parse_type(argv[2]);
    if (t != GGMLType::F16 && t != GGMLType::BF16) throw Error("--convert-range takes 1 (f16) or 30 (bf16)");
    const uint64_t start = uint64_t(parse_int(argv[3])), count = uint64_t(parse_int(argv[4]));
    if (start + count > (uint64_t(1) << 32)) throw Error("range goes past 2^32");
    std::vector<uint16_t> out(count);
    for (uint64_t i = 0; i < count; ++i) {
      const float f = bits_to_f32(uint32_t(start + i));
      out[i] = t == GGMLType::F16 ? f32_to_f16(f) : f32_to_bf16(f);
    }
    write_file(argv[5], out.data(), out.size() * 2);
    return 0;
  }
  if (argc == 5 && argv[1][0] != '-') {
    const GGMLType t = parse_type(argv[1]);
    const int64_t n = parse_int(argv[2]);
    const std::vector<uint8_t> in = read_file(argv[3]);
    check_size(in, t, n, argv[3]);
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(t, in.data(), out.data(), n);
    write_file(argv[4], out.data(), out.size() * sizeof(float));
    return 0;
  }
  std::fprintf(stderr,
               "usage: dequant_tool TYPE_ID N IN.bin OUT.bin\n"
               "       dequant_tool --quantize-act TYPE_ID N IN_f32.bin OUT.bin\n"
               "       dequant_tool --vec-dot WTYPE N W.bin ACT_f32.bin\n"
               "       dequant_tool --convert-range TYPE_ID START COUNT OUT.bin\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "dequant_tool: %s\n", e.what());
    return 1;
  }
}
