#pragma once
// Memory that a backend's operations read and write: host memory for the CPU backend, the GPU's
// own memory for the CUDA backend. The forward pass keeps its activations and the KV cache keeps
// its blocks in the memory of the backend that runs them, so the model code is the same for both.
#include <cstddef>

namespace squeeze {

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // True when the host can read and write the memory directly.
  virtual bool is_host() const = 0;
  // Throws Error (saying how much was asked for) when the memory is exhausted.
  virtual void* alloc(size_t bytes) = 0;
  // alloc, zero-filled. Host memory takes fresh zero pages from the kernel, so a large pool that
  // is mostly unused costs no resident memory.
  virtual void* alloc_zeroed(size_t bytes) {
    void* p = alloc(bytes);
    zero(p, bytes);
    return p;
  }
  virtual void free(void* p) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;       // both in this memory
  virtual void to_host(void* dst, const void* src, size_t bytes) = 0;    // src in this memory
  virtual void from_host(void* dst, const void* src, size_t bytes) = 0;  // dst in this memory
  // Strided copies of `rows` rows of `width` bytes (row r at src + r * src_pitch to dst + r *
  // dst_pitch): one call where the backend has one (a KV block of every layer).
  virtual void to_host_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
    for (size_t r = 0; r < rows; ++r)
      to_host(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, width);
  }
  virtual void from_host_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
    for (size_t r = 0; r < rows; ++r)
      from_host(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, width);
  }
  // Host memory that copies to and from this memory fastest (page-locked for a GPU); throws
  // Error when it cannot be had. Freed with free_host().
  virtual void* alloc_host(size_t bytes);
  virtual void free_host(void* p);
};

// The process's host memory (malloc). Lives as long as the process.
DeviceMemory& host_memory();

// An array of T in some DeviceMemory, freed with it. The memory must outlive the buffer (the
// memories are process-lifetime objects).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }

  // Makes room for at least n elements in mem, keeping nothing of the old contents.
  void reserve(DeviceMemory& mem, size_t n) {
    if (mem_ == &mem && n <= n_) return;
    release();
    p_ = static_cast<T*>(mem.alloc(n * sizeof(T)));
    mem_ = &mem;
    n_ = n;
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (p_) mem_->free(p_);
    p_ = nullptr;
    n_ = 0;
  }
  DeviceMemory* mem_ = nullptr;
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace squeeze
