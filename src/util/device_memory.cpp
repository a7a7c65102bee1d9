#include "util/device_memory.h"

#include <cstdlib>
#include <cstring>

#include "util/error.h"

namespace squeeze {

namespace {

class HostMemory final : public DeviceMemory {
 public:
  bool is_host() const override { return true; }
  void* alloc(size_t bytes) override {
    // 64-byte alignment: whole cache lines and aligned 512-bit vectors.
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + (bytes == 0 ? 64 : 0));
    if (!p) throw Error(fmt("out of host memory allocating %.1f MiB", double(bytes) / (1 << 20)));
    return p;
  }
  void* alloc_zeroed(size_t bytes) override {
    void* p = std::calloc(1, bytes == 0 ? 1 : bytes);
    if (!p) throw Error(fmt("out of host memory allocating %.1f MiB", double(bytes) / (1 << 20)));
    return p;
  }
  void free(void* p) override { std::free(p); }
  void zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void from_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
};

}  // namespace

void* DeviceMemory::alloc_host(size_t bytes) {
  void* p = std::malloc(bytes == 0 ? 1 : bytes);
  if (!p) throw Error(fmt("out of host memory allocating %.1f MiB", double(bytes) / (1 << 20)));
  return p;
}
void DeviceMemory::free_host(void* p) { std::free(p); }

DeviceMemory& host_memory() {
  static HostMemory m;
  return m;
}

}  // namespace squeeze
