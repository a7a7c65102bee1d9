#pragma once
// A Prometheus histogram: cumulative counts of observations at or under each bucket bound.
#include <cstdint>
#include <string>
#include <vector>

namespace squeeze {

struct Histogram {
  std::vector<double> bounds;    // ascending upper bounds; +Inf is implicit
  std::vector<uint64_t> counts;  // per bound, not cumulative
  uint64_t count = 0;
  double sum = 0;

  explicit Histogram(std::vector<double> b = {}) : bounds(std::move(b)), counts(bounds.size(), 0) {}
  void observe(double v) {
    for (size_t i = 0; i < bounds.size(); ++i)
      if (v <= bounds[i]) {
        ++counts[i];
        break;
      }
    ++count;
    sum += v;
  }
  // The exposition-format lines of this histogram.
  std::string render(const std::string& name, const std::string& help) const {
    std::string s = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
    uint64_t cum = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      cum += counts[i];
      s += name + "_bucket{le=\"" + std::to_string(bounds[i]) + "\"} " + std::to_string(cum) + "\n";
    }
    s += name + "_bucket{le=\"+Inf\"} " + std::to_string(count) + "\n";
    s += name + "_sum " + std::to_string(sum) + "\n" + name + "_count " + std::to_string(count) + "\n";
    return s;
  }
};

}  // namespace squeeze
