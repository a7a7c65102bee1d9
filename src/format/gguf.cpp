#include "format/gguf.h"

#include <bit>
#include <cstring>
#include <limits>

#include "util/error.h"

namespace squeeze {

static_assert(std::endian::native == std::endian::little,
              "GGUF fields are read with memcpy, which assumes a little-endian host");

const char* gguf_type_name(GGUFType t) {
  switch (t) {
    case GGUFType::UINT8: return "uint8";
    case GGUFType::INT8: return "int8";
    case GGUFType::UINT16: return "uint16";
    case GGUFType::INT16: return "int16";
    case GGUFType::UINT32: return "uint32";
    case GGUFType::INT32: return "int32";
    case GGUFType::FLOAT32: return "float32";
    case GGUFType::BOOL: return "bool";
    case GGUFType::STRING: return "string";
    case GGUFType::ARRAY: return "array";
    case GGUFType::UINT64: return "uint64";
    case GGUFType::INT64: return "int64";
    case GGUFType::FLOAT64: return "float64";
  }
  return "unknown";
}

bool GGUFValue::is_integer() const {
  switch (type) {
    case GGUFType::UINT8: case GGUFType::INT8: case GGUFType::UINT16: case GGUFType::INT16:
    case GGUFType::UINT32: case GGUFType::INT32: case GGUFType::UINT64: case GGUFType::INT64:
      return true;
    default:
      return false;
  }
}

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr size_t kMaxNameLen = 63;  // ggml's GGML_MAX_NAME (64) includes the terminating NUL
// Smallest encodings (even of invalid entries, so those get their specific error later), used to
// reject counts that the remaining bytes cannot hold before anything is allocated for them.
constexpr uint64_t kMinKVBytes = 8 + 4 + 1;              // key length, value type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name length, n_dims, type, offset


bool valid_value_type(uint32_t t) { return t <= uint32_t(GGUFType::FLOAT64); }

// Bytes of one fixed-size element; 0 for STRING/ARRAY whose size depends on their content.
size_t fixed_size(GGUFType t) {
  switch (t) {
    case GGUFType::UINT8: case GGUFType::INT8: case GGUFType::BOOL: return 1;
    case GGUFType::UINT16: case GGUFType::INT16: return 2;
    case GGUFType::UINT32: case GGUFType::INT32: case GGUFType::FLOAT32: return 4;
    case GGUFType::UINT64: case GGUFType::INT64: case GGUFType::FLOAT64: return 8;
    default: return 0;
  }
}

struct Parsed {
  uint32_t version = 0;
  uint32_t alignment = kDefaultAlignment;
  size_t data_offset = 0;
  std::vector<GGUFKV> kvs;
  std::unordered_map<std::string, size_t> kv_index;
  std::vector<TensorRef> tensors;
  std::unordered_map<std::string, size_t> tensor_index;
};

// Bounds-checked cursor over the file image. Every read names what it was reading so that a
// truncated file reports where it ended.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& label)
      : data_(data), size_(size), label_(label) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(fmt("%s: %s", label_.c_str(), msg.c_str()));
  }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(fmt("truncated file: %s at byte %zu needs %llu bytes, only %zu remain", what, pos_,
               (unsigned long long)n, remaining()));
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    uint64_t len = read<uint64_t>(what);
    // Checked before allocating, so an absurd length fails here rather than in operator new.
    if (len > remaining())
      fail(fmt("%s length %llu at byte %zu exceeds the %zu bytes left in the file (truncated?)",
               what, (unsigned long long)len, pos_ - 8, remaining()));
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& label_;
};

// Reads one scalar of type t (not ARRAY) into v's scalar fields.
void read_scalar(Cursor& c, GGUFType t, GGUFValue& v, const std::string& key) {
  switch (t) {
    case GGUFType::UINT8: v.i = c.read<uint8_t>("uint8 value"); break;
    case GGUFType::INT8: v.i = c.read<int8_t>("int8 value"); break;
    case GGUFType::UINT16: v.i = c.read<uint16_t>("uint16 value"); break;
    case GGUFType::INT16: v.i = c.read<int16_t>("int16 value"); break;
    case GGUFType::UINT32: v.i = c.read<uint32_t>("uint32 value"); break;
    case GGUFType::INT32: v.i = c.read<int32_t>("int32 value"); break;
    case GGUFType::INT64: v.i = c.read<int64_t>("int64 value"); break;
    case GGUFType::UINT64: {
      v.u = c.read<uint64_t>("uint64 value");
      v.i = v.u > uint64_t(std::numeric_limits<int64_t>::max())
                ? std::numeric_limits<int64_t>::max()
                : int64_t(v.u);
      break;
    }
    case GGUFType::FLOAT32: v.f = c.read<float>("float32 value"); break;
    case GGUFType::FLOAT64: v.f = c.read<double>("float64 value"); break;
    case GGUFType::BOOL: {
      uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) c.fail(fmt("metadata key '%s' has invalid bool value %u", printable(key).c_str(), b));
      v.i = b;
      break;
    }
    case GGUFType::STRING: v.s = c.read_string("string value"); break;
    case GGUFType::ARRAY: c.fail("internal: read_scalar called for an array");
  }
}

double read_number(Cursor& c, GGUFType t, const std::string& key) {
  GGUFValue tmp;
  read_scalar(c, t, tmp, key);
  if (t == GGUFType::FLOAT32 || t == GGUFType::FLOAT64) return tmp.f;
  if (t == GGUFType::UINT64) return double(tmp.u);
  return double(tmp.i);
}

void read_value(Cursor& c, GGUFValue& v, const std::string& key) {
  uint32_t type = c.read<uint32_t>("metadata value type");
  if (!valid_value_type(type))
    c.fail(fmt("metadata key '%s' has unknown value type %u", printable(key).c_str(), type));
  v.type = GGUFType(type);
  if (v.type != GGUFType::ARRAY) {
    read_scalar(c, v.type, v, key);
    return;
  }
  uint32_t elem = c.read<uint32_t>("array element type");
  if (!valid_value_type(elem))
    c.fail(fmt("metadata key '%s' is an array of unknown value type %u", printable(key).c_str(), elem));
  v.elem_type = GGUFType(elem);
  if (v.elem_type == GGUFType::ARRAY)
    c.fail(fmt("metadata key '%s' is a nested array, which is not supported", printable(key).c_str()));
  uint64_t n = c.read<uint64_t>("array length");
  // A string element is at least its 8-byte length prefix.
  size_t min_elem = v.elem_type == GGUFType::STRING ? 8 : fixed_size(v.elem_type);
  if (n > c.remaining() / min_elem)
    c.fail(fmt("metadata key '%s': array length %llu exceeds the remaining %zu bytes of the file",
               printable(key).c_str(), (unsigned long long)n, c.remaining()));
  if (v.elem_type == GGUFType::STRING) {
    // No reserve: each string's bytes are checked as it is read, so memory tracks real content.
    for (uint64_t k = 0; k < n; ++k) v.strs.push_back(c.read_string("array string element"));
  } else {
    v.nums.reserve(size_t(n));
    for (uint64_t k = 0; k < n; ++k) v.nums.push_back(read_number(c, v.elem_type, key));
  }
}

void parse_header_and_kvs(Cursor& c, Parsed& p, uint64_t& n_tensors) {
  if (c.remaining() >= 4) {
    if (c.read<uint32_t>("magic") != kMagic) c.fail("not a GGUF file (bad magic)");
  } else {
    c.fail(fmt("truncated file: %zu bytes is too small for a GGUF header (bad magic)",
               c.remaining()));
  }
  p.version = c.read<uint32_t>("version");
  if ((p.version & 0xFFFF) == 0)
    c.fail(fmt("unsupported GGUF version 0x%08x (byte-swapped / big-endian file?)", p.version));
  if (p.version == 1)
    c.fail("unsupported GGUF version 1 (only versions 2 and 3 are supported)");
  if (p.version > 3 || p.version == 0)
    c.fail(fmt("unsupported GGUF version %u (only versions 2 and 3 are supported)", p.version));

  n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata kv count");
  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    c.fail(fmt("tensor count %llu is more than the file's %zu remaining bytes can hold "
               "(corrupt or truncated file)",
               (unsigned long long)n_tensors, c.remaining()));
  if (n_kv > c.remaining() / kMinKVBytes)
    c.fail(fmt("metadata kv count %llu is more than the file's %zu remaining bytes can hold "
               "(corrupt or truncated file)",
               (unsigned long long)n_kv, c.remaining()));

  for (uint64_t k = 0; k < n_kv; ++k) {
    GGUFKV kv;
    kv.key = c.read_string("metadata key");
    if (kv.key.empty()) c.fail(fmt("metadata key %llu is empty", (unsigned long long)k));
    if (p.kv_index.count(kv.key)) c.fail(fmt("duplicate metadata key '%s'", printable(kv.key).c_str()));
    read_value(c, kv.value, kv.key);
    p.kv_index.emplace(kv.key, p.kvs.size());
    p.kvs.push_back(std::move(kv));
  }

  auto it = p.kv_index.find("general.alignment");
  if (it != p.kv_index.end()) {
    const GGUFValue& v = p.kvs[it->second].value;
    if (v.type != GGUFType::UINT32)
      c.fail(fmt("general.alignment has type %s, expected uint32", gguf_type_name(v.type)));
    uint64_t a = uint64_t(v.i);
    if (a == 0 || !std::has_single_bit(a))
      c.fail(fmt("general.alignment %llu is not a power of two", (unsigned long long)a));
    p.alignment = uint32_t(a);
  }
}

void parse_tensor_infos(Cursor& c, Parsed& p, uint64_t n_tensors, std::vector<uint64_t>& offsets) {
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorRef t;
    t.name = c.read_string("tensor name");
    if (t.name.empty()) c.fail(fmt("tensor %llu has an empty name", (unsigned long long)k));
    if (t.name.size() > kMaxNameLen)
      c.fail(fmt("tensor name '%s' is %zu bytes long (at most %zu allowed)",
                 printable(t.name.substr(0, 40)).c_str(), t.name.size(), kMaxNameLen));
    if (p.tensor_index.count(t.name))
      c.fail(fmt("duplicate tensor name '%s'", printable(t.name).c_str()));
    const std::string shown = printable(t.name);
    const char* nm = shown.c_str();

    uint32_t n_dims = c.read<uint32_t>("tensor n_dims");
    if (n_dims < 1 || n_dims > 4)
      c.fail(fmt("tensor '%s' has n_dims %u (must be 1..4)", nm, n_dims));
    t.n_dims = int(n_dims);
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.read<uint64_t>("tensor dimension");
      if (ne > uint64_t(std::numeric_limits<int64_t>::max()))
        c.fail(fmt("tensor '%s' has negative dimension %u", nm, d));
      t.ne[d] = int64_t(ne);
      if (__builtin_mul_overflow(n_elem, t.ne[d], &n_elem))
        c.fail(fmt("tensor '%s' has too many elements (dimension product overflows)", nm));
    }

    uint32_t type_id = c.read<uint32_t>("tensor type");
    const TypeInfo* ti = type_info(type_id);
    if (!ti) c.fail(fmt("tensor '%s' has unknown ggml type id %u", nm, type_id));
    t.type = ti->type;
    if (t.ne[0] % ti->block_elems != 0)
      c.fail(fmt("tensor '%s': ne[0] = %lld is not a multiple of the %s block size %lld", nm,
                 (long long)t.ne[0], ti->name, (long long)ti->block_elems));
    // nbytes = blocks per row * block bytes * rows, each step overflow-checked.
    uint64_t nbytes = uint64_t(t.ne[0] / ti->block_elems);
    bool ovf = __builtin_mul_overflow(nbytes, uint64_t(ti->block_bytes), &nbytes);
    for (int d = 1; d < 4; ++d) ovf = ovf || __builtin_mul_overflow(nbytes, uint64_t(t.ne[d]), &nbytes);
    if (ovf) c.fail(fmt("tensor '%s' byte size overflows", nm));
    t.nbytes = size_t(nbytes);

    uint64_t off = c.read<uint64_t>("tensor data offset");
    if (off % p.alignment != 0)
      c.fail(fmt("tensor '%s' data offset %llu is not a multiple of the alignment %u (misaligned)",
                 nm, (unsigned long long)off, p.alignment));
    offsets.push_back(off);
    p.tensor_index.emplace(t.name, p.tensors.size());
    p.tensors.push_back(std::move(t));
  }
}

void parse(const uint8_t* data, size_t size, const std::string& label, Parsed& p) {
  Cursor c(data, size, label);
  uint64_t n_tensors = 0;
  parse_header_and_kvs(c, p, n_tensors);
  std::vector<uint64_t> offsets;
  parse_tensor_infos(c, p, n_tensors, offsets);

  size_t end = c.pos();
  size_t pad = (p.alignment - end % p.alignment) % p.alignment;
  p.data_offset = end + pad;  // end <= size and pad < 2^32, so this cannot overflow size_t
  if (p.tensors.empty()) return;  // vocab-only files may end right after the metadata
  if (p.data_offset > size)
    c.fail(fmt("truncated file: the tensor data section would start at byte %zu, past the end "
               "of the file (%zu bytes)", p.data_offset, size));
  size_t avail = size - p.data_offset;
  for (size_t k = 0; k < p.tensors.size(); ++k) {
    TensorRef& t = p.tensors[k];
    if (offsets[k] > avail || t.nbytes > avail - offsets[k])
      c.fail(fmt("tensor '%s' data (offset %llu, %zu bytes) extends beyond the end of the file "
                 "(file truncated?)",
                 printable(t.name).c_str(), (unsigned long long)offsets[k], t.nbytes));
    t.data = data + p.data_offset + size_t(offsets[k]);
  }
}

}  // namespace

std::unique_ptr<GGUFFile> GGUFFile::open(const std::string& path) {
  std::unique_ptr<GGUFFile> f(new GGUFFile());
  f->map_ = std::make_unique<MappedFile>(path);
  Parsed p;
  parse(f->map_->data(), f->map_->size(), path, p);
  f->version_ = p.version;
  f->alignment_ = p.alignment;
  f->data_offset_ = p.data_offset;
  f->kvs_ = std::move(p.kvs);
  f->kv_index_ = std::move(p.kv_index);
  f->tensors_ = std::move(p.tensors);
  f->tensor_index_ = std::move(p.tensor_index);
  return f;
}

size_t gguf_validate_buffer(const uint8_t* data, size_t size) {
  Parsed p;
  parse(data, size, "<buffer>", p);
  return p.tensors.size();
}

const GGUFValue* GGUFFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const TensorRef* GGUFFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const GGUFValue& v,
                             const char* expected) {
  std::string got = gguf_type_name(v.type);
  if (v.type == GGUFType::ARRAY) got += fmt(" of %s", gguf_type_name(v.elem_type));
  throw Error(fmt("%s: metadata key '%.*s' has type %s, expected %s", path.c_str(),
                  int(key.size()), key.data(), got.c_str(), expected));
}
}  // namespace

std::optional<int64_t> GGUFFile::get_int(std::string_view key) const {
  const GGUFValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(path(), key, *v, "an integer");
  if (v->type == GGUFType::UINT64 && v->u > uint64_t(std::numeric_limits<int64_t>::max()))
    throw Error(fmt("%s: metadata key '%.*s' value %llu is out of range", path().c_str(),
                    int(key.size()), key.data(), (unsigned long long)v->u));
  return v->i;
}

std::optional<double> GGUFFile::get_float(std::string_view key) const {
  const GGUFValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->type == GGUFType::UINT64) return double(v->u);
  if (v->is_integer()) return double(v->i);
  wrong_type(path(), key, *v, "a number");
}

std::optional<bool> GGUFFile::get_bool(std::string_view key) const {
  const GGUFValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GGUFType::BOOL) wrong_type(path(), key, *v, "bool");
  return v->i != 0;
}

std::optional<std::string> GGUFFile::get_string(std::string_view key) const {
  const GGUFValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GGUFType::STRING) wrong_type(path(), key, *v, "string");
  return v->s;
}

const std::vector<std::string>* GGUFFile::get_string_array(std::string_view key) const {
  const GGUFValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GGUFType::ARRAY || v->elem_type != GGUFType::STRING)
    wrong_type(path(), key, *v, "array of string");
  return &v->strs;
}

const std::vector<double>* GGUFFile::get_number_array(std::string_view key) const {
  const GGUFValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GGUFType::ARRAY || v->elem_type == GGUFType::STRING)
    wrong_type(path(), key, *v, "array of numbers");
  return &v->nums;
}

}  // namespace squeeze
