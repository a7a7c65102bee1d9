#pragma once
// A read-only memory map of a whole file. Model weights stay mapped for the process lifetime,
// so the page cache, not the heap, holds them.
#include <cstddef>
#include <cstdint>
#include <string>

namespace squeeze {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path and errno
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Asks the kernel to start reading the whole file in now (asynchronous readahead), so a cold
  // start streams it from disk instead of faulting it in 4 KiB at a time.
  void prefetch() const;
  // Drops the whole pages of [p, p + n) from this process's resident memory if the range lies in
  // a live MappedFile (returns false, doing nothing, otherwise). For weights the backend has
  // copied into a layout of its own: reading them again stays correct, it just faults them in.
  static bool release_pages(const void* p, size_t n);

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) file into a string; throws Error if it cannot.
std::string read_text_file(const std::string& path);

}  // namespace squeeze
