// libFuzzer target: arbitrary bytes as a GGUF file. A defect must surface as squeeze::Error;
// anything else (crash, sanitizer report, other exception, runaway allocation) is a finding.
#include <cstddef>
#include <cstdint>

#include "format/gguf.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    squeeze::gguf_validate_buffer(data, size);
  } catch (const squeeze::Error&) {
  }
  return 0;
}
