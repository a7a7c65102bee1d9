#include "format/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace squeeze {

namespace {

using json = nlohmann::json;

// The header is a flat object of flat objects; anything deeper is malformed and is refused
// before nlohmann builds it, so a hostile header cannot grow a deep tree.
constexpr int kMaxJsonDepth = 8;


[[noreturn]] void fail(const std::string& label, const std::string& msg) {
  throw Error(fmt("%s: %s", label.c_str(), msg.c_str()));
}

// Parses JSON text, rejecting duplicate top-level keys (nlohmann would silently keep the last)
// and excessive nesting. Errors name `label` and say `what` was being parsed.
json parse_json(const char* begin, const char* end, const std::string& label, const char* what) {
  std::set<std::string> seen;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (depth > kMaxJsonDepth) fail(label, fmt("%s nests deeper than %d levels", what, kMaxJsonDepth));
    if (ev == json::parse_event_t::key && depth == 1) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second) fail(label, fmt("duplicate entry '%s' in %s", printable(k).c_str(), what));
    }
    return true;
  };
  try {
    return json::parse(begin, end, cb);
  } catch (const json::exception& e) {
    fail(label, fmt("invalid JSON in %s: %s", what, printable(e.what(), 400).c_str()));
  }
}

struct DType {
  GGMLType type;
  uint64_t size;
};

bool lookup_dtype(const std::string& s, DType& out) {
  if (s == "F32") out = {GGMLType::F32, 4};
  else if (s == "F16") out = {GGMLType::F16, 2};
  else if (s == "BF16") out = {GGMLType::BF16, 2};
  else return false;
  return true;
}

uint64_t as_u64(const json& v, bool& ok) {
  ok = v.is_number_unsigned();
  return ok ? v.get<uint64_t>() : 0;
}

// Parses one safetensors image into TensorRefs pointing into `data`.
void parse_file(const uint8_t* data, size_t size, const std::string& label,
                std::vector<TensorRef>& out) {
  if (size < 8)
    fail(label, fmt("truncated file: %zu bytes is too small for the safetensors header length", size));
  uint64_t hlen;
  std::memcpy(&hlen, data, 8);
  if (hlen > size - 8)
    fail(label, fmt("header length %llu is beyond the end of the file (%zu bytes; truncated?)",
                    (unsigned long long)hlen, size));
  const char* hbeg = reinterpret_cast<const char*>(data + 8);
  json header = parse_json(hbeg, hbeg + hlen, label, "the safetensors header");
  if (!header.is_object()) fail(label, "safetensors header is not a JSON object");

  const uint8_t* base = data + 8 + hlen;
  const uint64_t avail = size - 8 - hlen;
  struct Range {
    uint64_t begin, end;
    size_t idx;
  };
  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string nm = printable(name);
    if (name.empty()) fail(label, "tensor with an empty name");
    if (!entry.is_object()) fail(label, fmt("tensor '%s': header entry is not an object", nm.c_str()));
    auto dt = entry.find("dtype");
    auto sh = entry.find("shape");
    auto offs = entry.find("data_offsets");
    if (dt == entry.end() || !dt->is_string())
      fail(label, fmt("tensor '%s': missing or non-string dtype", nm.c_str()));
    if (sh == entry.end() || !sh->is_array())
      fail(label, fmt("tensor '%s': missing or non-array shape", nm.c_str()));
    if (offs == entry.end() || !offs->is_array() || offs->size() != 2)
      fail(label, fmt("tensor '%s': data_offsets must be an array [begin, end]", nm.c_str()));

    DType dtype;
    const std::string& dts = dt->get_ref<const std::string&>();
    if (!lookup_dtype(dts, dtype))
      fail(label, fmt("tensor '%s' has unsupported dtype '%s' (supported: F32, F16, BF16)",
                      nm.c_str(), printable(dts).c_str()));
    if (sh->size() > 4)
      fail(label, fmt("tensor '%s' has %zu dimensions (at most 4 supported)", nm.c_str(), sh->size()));

    TensorRef t;
    t.name = name;
    t.type = dtype.type;
    t.n_dims = std::max<int>(1, int(sh->size()));
    uint64_t numel = 1;
    const size_t nd = sh->size();
    for (size_t d = 0; d < nd; ++d) {
      bool ok;
      uint64_t dim = as_u64((*sh)[d], ok);
      if (!ok || dim > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(label, fmt("tensor '%s': shape entry %zu is not a non-negative integer", nm.c_str(), d));
      t.ne[nd - 1 - d] = int64_t(dim);  // PyTorch order is outermost first; ggml's is innermost
      if (__builtin_mul_overflow(numel, dim, &numel))
        fail(label, fmt("tensor '%s': element count overflows", nm.c_str()));
    }
    uint64_t nbytes;
    if (numel > uint64_t(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, dtype.size, &nbytes))
      fail(label, fmt("tensor '%s': byte size overflows", nm.c_str()));

    bool ok_b, ok_e;
    uint64_t b = as_u64((*offs)[0], ok_b), e = as_u64((*offs)[1], ok_e);
    if (!ok_b || !ok_e)
      fail(label, fmt("tensor '%s': data_offsets are not non-negative integers", nm.c_str()));
    if (b > e) fail(label, fmt("tensor '%s': data_offsets begin %llu > end %llu", nm.c_str(),
                               (unsigned long long)b, (unsigned long long)e));
    if (e > avail)
      fail(label, fmt("tensor '%s': data_offsets [%llu, %llu] extend beyond the end of the file "
                      "(data section is %llu bytes; truncated?)",
                      nm.c_str(), (unsigned long long)b, (unsigned long long)e,
                      (unsigned long long)avail));
    if (e - b != nbytes)
      fail(label, fmt("tensor '%s': size mismatch: data_offsets span %llu bytes but %s shape "
                      "needs %llu",
                      nm.c_str(), (unsigned long long)(e - b), dts.c_str(),
                      (unsigned long long)nbytes));
    t.data = base + b;
    t.nbytes = size_t(nbytes);
    ranges.push_back({b, e, out.size()});
    out.push_back(std::move(t));
  }

  // Two names sharing bytes would alias weights silently; writers never produce that.
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& x, const Range& y) { return x.begin < y.begin; });
  for (size_t k = 1; k < ranges.size(); ++k) {
    const Range& prev = ranges[k - 1];
    const Range& cur = ranges[k];
    if (cur.begin < prev.end && cur.end > cur.begin)
      fail(label, fmt("tensors '%s' and '%s' overlap (duplicate data ranges)",
                      printable(out[prev.idx].name).c_str(), printable(out[cur.idx].name).c_str()));
  }
}

}  // namespace

void SafetensorsSet::add_file(const std::string& path) {
  maps_.push_back(std::make_unique<MappedFile>(path));
  const MappedFile& m = *maps_.back();
  std::vector<TensorRef> found;
  parse_file(m.data(), m.size(), path, found);
  for (TensorRef& t : found) {
    if (index_.count(t.name))
      throw Error(fmt("%s: duplicate tensor name '%s' (already in another shard)", path.c_str(),
                      printable(t.name).c_str()));
    index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
}

std::unique_ptr<SafetensorsSet> SafetensorsSet::open_file(const std::string& path) {
  std::unique_ptr<SafetensorsSet> s(new SafetensorsSet());
  s->add_file(path);
  return s;
}

std::unique_ptr<SafetensorsSet> SafetensorsSet::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  const fs::path index_path = d / "model.safetensors.index.json";
  const fs::path single = d / "model.safetensors";
  std::error_code ec;
  if (!fs::exists(index_path, ec)) {
    if (!fs::exists(single, ec))
      throw Error(fmt("%s: no model.safetensors or model.safetensors.index.json in this folder",
                      dir.c_str()));
    return open_file(single.string());
  }

  const std::string label = index_path.string();
  const std::string text = read_text_file(label);
  json index = parse_json(text.data(), text.data() + text.size(), label, "the index");
  if (!index.is_object()) fail(label, "index is not a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object() || wm->empty())
    fail(label, "index has no weight_map object naming the shards");

  // Shards in first-mention order, so tensor order is stable across runs.
  std::vector<std::string> shards;
  std::map<std::string, size_t> shard_pos;
  for (const auto& [name, file] : wm->items()) {
    if (!file.is_string())
      fail(label, fmt("weight_map entry '%s' is not a file name", printable(name).c_str()));
    const std::string& f = file.get_ref<const std::string&>();
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
      fail(label, fmt("weight_map names shard '%s', which is not a file in the model folder",
                      printable(f).c_str()));
    if (shard_pos.emplace(f, shards.size()).second) shards.push_back(f);
  }
  for (const std::string& f : shards) {
    if (!fs::is_regular_file(d / f, ec))
      fail(label, fmt("shard '%s' named by the index is missing", printable(f).c_str()));
  }

  std::unique_ptr<SafetensorsSet> s(new SafetensorsSet());
  std::vector<std::pair<size_t, size_t>> shard_range;  // [first, last) tensor index per shard
  for (const std::string& f : shards) {
    size_t lo = s->tensors_.size();
    s->add_file((d / f).string());
    shard_range.emplace_back(lo, s->tensors_.size());
  }
  for (const auto& [name, file] : wm->items()) {
    const std::string& f = file.get_ref<const std::string&>();
    auto [lo, hi] = shard_range[shard_pos.at(f)];
    auto it = s->index_.find(name);
    if (it == s->index_.end() || it->second < lo || it->second >= hi)
      fail(label, fmt("tensor '%s' listed in the index is missing from shard '%s'",
                      printable(name).c_str(), printable(f).c_str()));
  }
  return s;
}

const TensorRef* SafetensorsSet::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

size_t safetensors_validate_buffer(const uint8_t* data, size_t size) {
  std::vector<TensorRef> found;
  parse_file(data, size, "<buffer>", found);
  return found.size();
}

}  // namespace squeeze
