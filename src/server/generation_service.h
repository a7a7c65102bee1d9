#pragma once
// The Engine on its own thread, for many concurrent clients. Clients submit a request and get a
// Stream of events (text pieces as they are generated, then one final event); the engine thread
// admits new requests and applies cancellations between steps, so the Engine itself stays
// single-threaded. Stop strings are handled here, on the decoded text: the text that could still
// turn into a stop string is held back until it cannot.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "server/histogram.h"
#include "tokenizer/tokenizer.h"

namespace squeeze {

// One generated token's log-probability and its most likely alternatives, as the API shows them
// (the numbers are engine/logprobs.h's: log-softmax of the raw logits).
struct TokenLogprobs {
  std::string token;        // its bytes, special tokens as their text (may be part of a UTF-8 character)
  float logprob = 0.0f;
  int64_t text_offset = 0;  // the character of the completion text where its first byte is
  std::vector<std::pair<std::string, float>> top;  // the alternatives asked for, most likely first
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int32_t max_tokens = 16;
  std::vector<std::string> stop;
  int32_t n = 1;  // parallel samples (choices); the prompt's KV is shared between them
  bool ignore_eos = false;  // keep generating through end-of-generation tokens (benchmarks)
  int32_t logprobs = -1;    // -1: none; k in 0..20: every token's logprob and its top k alternatives
};

struct GenerationEvent {
  int32_t index = 0;       // which choice (sample) of the request
  std::string text;        // new text (may be empty on the final event)
  bool done = false;       // this choice is finished; a request ends after n of these (or an error)
  std::string finish_reason;  // on the final event: "stop", "length", "cancelled" or "error"
  std::string error;          // with finish_reason "error"
  int32_t prompt_tokens = 0, completion_tokens = 0;  // on the final event
  // With GenerationRequest::logprobs: the entries of the tokens whose text is in this event, in
  // order; an entry waits with its token's text (held back for a stop string or an unfinished
  // UTF-8 character). Every generated token gets one, the end-of-generation token and the tokens
  // after a stop string's cut included (on the final event), so a choice's entries number its
  // completion_tokens.
  std::vector<TokenLogprobs> logprobs;
};

// One request's event queue, shared by the client thread (reader) and the engine thread.
class Stream {
 public:
  // Blocks until an event is available; the final event has done = true.
  GenerationEvent next();
  // Asks the engine thread to stop this request (a disconnected client); idempotent.
  void cancel();
  bool cancelled() const;

 private:
  friend class GenerationService;
  void push(GenerationEvent e);
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerationEvent> events_;
  bool cancelled_ = false;
};

class GenerationService {
 public:
  GenerationService(Engine& engine, const Tokenizer& tokenizer);
  ~GenerationService();  // stops the thread; unfinished requests end with "cancelled"

  std::shared_ptr<Stream> submit(GenerationRequest req);

  // A snapshot for /metrics and /health, taken on the engine thread after each step.
  struct Stats {
    int64_t waiting = 0, running = 0, preemptions = 0, swapped_out = 0, swapped_in = 0;
    int64_t kv_blocks_total = 0, kv_blocks_free = 0, kv_blocks_cached = 0;
    uint64_t prefix_hits = 0, prefix_lookups = 0;
    int64_t kv_slots_allocated = 0, kv_slots_filled = 0;  // of running sequences
    uint64_t prompt_tokens = 0, generated_tokens = 0, requests_finished = 0;
    // Seconds from submission to the first generated token, and per output token after it.
    Histogram ttft{{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
    Histogram tpot{{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1}};
  };
  Stats stats() const;

 private:
  struct Active {
    std::shared_ptr<Stream> stream;
    GenerationRequest req;
    int64_t seq_id = 0;
    int32_t index = 0;
    int32_t n_emitted_tokens = 0;  // generated tokens already decoded
    StreamDecoder decoder;
    std::string held;  // decoded text not sent yet (could be the start of a stop string)
    // Logprobs waiting for their token's text to go out: (end of the token's bytes in the
    // completion text, entry); text_bytes and sent_bytes count the text decoded and sent so far.
    std::deque<std::pair<size_t, TokenLogprobs>> held_logprobs;
    size_t text_bytes = 0, sent_bytes = 0;
    int64_t text_chars = 0;
    std::chrono::steady_clock::time_point submitted, first_token;
  };
  void loop();
  // Decodes a request's new tokens, applies stop strings; returns true when it is finished.
  bool emit(Active& a);
  void finish(Active& a, const std::string& reason);
  // Queues the logprobs of the token whose text piece (special tokens as "") is piece.
  void hold_logprobs(Active& a, const StepLogprobs& lp, const std::string& piece);
  // Moves the held logprobs whose text has been sent (all of them: everything) into e.
  static void release_logprobs(Active& a, GenerationEvent& e, bool everything);

  Engine& engine_;
  const Tokenizer& tok_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Active> incoming_;
  bool stop_ = false;
  Stats stats_;
  std::vector<std::unique_ptr<Active>> active_;
  std::thread thread_;
};

}  // namespace squeeze
