// libFuzzer target: arbitrary bytes as one safetensors file (u64 header length, JSON header,
// data). A defect must surface as squeeze::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>

#include "format/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    squeeze::safetensors_validate_buffer(data, size);
  } catch (const squeeze::Error&) {
  }
  return 0;
}
