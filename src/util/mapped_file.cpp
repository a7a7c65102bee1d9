#include "util/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "util/error.h"

namespace squeeze {

namespace {
// The live mappings, so release_pages can tell a mapped range from any other memory.
std::mutex g_maps_mutex;
std::vector<std::pair<const uint8_t*, size_t>> g_maps;
}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(fmt("cannot open '%s': %s", path.c_str(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt("'%s' is not a regular file", path.c_str()));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(fmt("cannot map '%s': %s", path.c_str(), std::strerror(e)));
    }
    data_ = static_cast<const uint8_t*>(p);
    std::lock_guard<std::mutex> lock(g_maps_mutex);
    g_maps.emplace_back(data_, size_);
  }
  ::close(fd);
}

bool MappedFile::release_pages(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  {
    std::lock_guard<std::mutex> lock(g_maps_mutex);
    bool inside = false;
    for (const auto& [start, size] : g_maps) inside |= b >= start && b + n <= start + size;
    if (!inside) return false;
  }
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (uintptr_t(b) + page - 1) / page * page, hi = (uintptr_t(b) + n) / page * page;
  // A read-only private file mapping: the pages leave this process and come back from the page
  // cache (or the disk) if they are read again.
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  return true;
}

void MappedFile::prefetch() const {
  if (data_) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_WILLNEED);  // advisory: errors are harmless
}

MappedFile::~MappedFile() {
  if (!data_) return;
  {
    std::lock_guard<std::mutex> lock(g_maps_mutex);
    for (size_t i = 0; i < g_maps.size(); ++i)
      if (g_maps[i].first == data_) {
        g_maps.erase(g_maps.begin() + long(i));
        break;
      }
  }
  ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt("cannot open '%s': %s", path.c_str(), std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace squeeze
