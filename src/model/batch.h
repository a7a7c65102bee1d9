#pragma once
// One engine step: a ragged list of sequences, each contributing k >= 1 new tokens (a prefill
// chunk, a decode token, or draft tokens to verify) at their positions, with their block tables,
// and the rows whose logits are wanted. Prefill, decode and chunked prefill are all this.
#include <cstdint>
#include <vector>

#include "kv/block_table.h"

namespace squeeze {

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
  std::vector<const int32_t*> blocks;  // per token: its sequence's block ids
  std::vector<int32_t> logit_rows;     // token indices whose logits forward() returns, in order
  // Each token's results independent of the batch's size and makeup (AttentionParams).
  bool batch_invariant = false;

  void clear() {
    tokens.clear();
    positions.clear();
    blocks.clear();
    logit_rows.clear();
  }
  // Adds one token of a sequence whose table already covers pos.
  void add(int32_t token, int32_t pos, const BlockTable& table, bool want_logits) {
    if (want_logits) logit_rows.push_back(int32_t(tokens.size()));
    tokens.push_back(token);
    positions.push_back(pos);
    blocks.push_back(table.blocks.data());
  }
  int64_t size() const { return int64_t(tokens.size()); }
};

}  // namespace squeeze
