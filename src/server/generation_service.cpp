#include "server/generation_service.h"

#include <algorithm>

#include "util/error.h"

namespace squeeze {

GenerationEvent Stream::next() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return !events_.empty(); });
  GenerationEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void Stream::cancel() {
  std::lock_guard<std::mutex> lk(mu_);
  cancelled_ = true;
}

bool Stream::cancelled() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cancelled_;
}

void Stream::push(GenerationEvent e) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_one();
}

GenerationService::GenerationService(Engine& engine, const Tokenizer& tokenizer)
    : engine_(engine), tok_(tokenizer), thread_([this] { loop(); }) {}

GenerationService::~GenerationService() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Stream> GenerationService::submit(GenerationRequest req) {
  auto stream = std::make_shared<Stream>();
  {
    std::lock_guard<std::mutex> lk(mu_);
    Active a;
    a.submitted = std::chrono::steady_clock::now();
    a.stream = stream;
    a.req = std::move(req);
    incoming_.push_back(std::move(a));
  }
  cv_.notify_all();
  return stream;
}

GenerationService::Stats GenerationService::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void GenerationService::finish(Active& a, const std::string& reason) {
  const Sequence& s = engine_.sequence(a.seq_id);
  GenerationEvent e;
  e.index = a.index;
  e.text = a.held;  // nothing held can become a stop string any more
  a.held.clear();
  e.done = true;
  release_logprobs(a, e, true);
  e.finish_reason = reason;
  e.prompt_tokens = s.n_prompt;
  e.completion_tokens = s.n_generated();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (s.n_generated() > 1 && a.n_emitted_tokens > 0) {
      const double span = std::chrono::duration<double>(std::chrono::steady_clock::now() - a.first_token).count();
      stats_.tpot.observe(span / double(s.n_generated() - 1));
    }
    stats_.prompt_tokens += uint64_t(s.n_prompt);
    stats_.generated_tokens += uint64_t(s.n_generated());
    ++stats_.requests_finished;
  }
  engine_.release(a.seq_id);
  a.stream->push(std::move(e));
}

void GenerationService::hold_logprobs(Active& a, const StepLogprobs& lp, const std::string& piece) {
  TokenLogprobs t;
  t.token = tok_.token_to_piece(lp.sampled.token, true);
  t.logprob = lp.sampled.logprob;
  // The character its first byte belongs to: a token that starts inside a UTF-8 character (byte
  // fallback) points at that character.
  const bool continues = !piece.empty() && (uint8_t(piece[0]) & 0xC0) == 0x80 && a.text_chars > 0;
  t.text_offset = a.text_chars - (continues ? 1 : 0);
  t.top.reserve(lp.top.size());
  for (const TokenLogprob& alt : lp.top) t.top.emplace_back(tok_.token_to_piece(alt.token, true), alt.logprob);
  for (char c : piece) a.text_chars += (uint8_t(c) & 0xC0) != 0x80;  // UTF-8 lead bytes: characters
  a.held_logprobs.emplace_back(a.text_bytes + piece.size(), std::move(t));
}

void GenerationService::release_logprobs(Active& a, GenerationEvent& e, bool everything) {
  while (!a.held_logprobs.empty() && (everything || a.held_logprobs.front().first <= a.sent_bytes)) {
    e.logprobs.push_back(std::move(a.held_logprobs.front().second));
    a.held_logprobs.pop_front();
  }
}

bool GenerationService::emit(Active& a) {
  const Sequence& s = engine_.sequence(a.seq_id);
  std::string text;
  if (a.n_emitted_tokens == 0 && s.n_generated() > 0) {
    a.first_token = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lk(mu_);
    stats_.ttft.observe(std::chrono::duration<double>(a.first_token - a.submitted).count());
  }
  for (; a.n_emitted_tokens < s.n_generated(); ++a.n_emitted_tokens) {
    const int32_t tok = s.tokens[size_t(s.n_prompt + a.n_emitted_tokens)];
    const bool eos = s.state == SeqState::finished && s.finish == FinishReason::stop && tok_.is_eog(tok);
    const std::string piece = eos ? std::string() : tok_.token_to_piece(tok, false);  // EOS: no text
    if (a.req.logprobs >= 0 && size_t(a.n_emitted_tokens) < s.logprobs.size())
      hold_logprobs(a, s.logprobs[size_t(a.n_emitted_tokens)], piece);
    a.text_bytes += piece.size();
    text += a.decoder.push(piece);
  }
  const bool engine_done = s.state == SeqState::finished;
  if (engine_done) text += a.decoder.flush();
  a.held += text;

  // Stop strings: cut at the earliest occurrence and finish.
  size_t cut = std::string::npos;
  for (const std::string& stop : a.req.stop)
    if (!stop.empty()) cut = std::min(cut, a.held.find(stop));
  if (cut != std::string::npos) {
    a.held.resize(cut);
    if (!engine_done) engine_.cancel(a.seq_id);
    finish(a, "stop");
    return true;
  }
  if (engine_done) {
    finish(a, s.finish == FinishReason::length ? "length" : s.finish == FinishReason::cancelled ? "cancelled" : "stop");
    return true;
  }
  // Send all but the longest tail that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& stop : a.req.stop)
    for (size_t n = std::min(stop.size() - (stop.empty() ? 0 : 1), a.held.size()); n > keep; --n)
      if (a.held.compare(a.held.size() - n, n, stop, 0, n) == 0) {
        keep = n;
        break;
      }
  if (a.held.size() > keep || !a.held_logprobs.empty()) {
    GenerationEvent e;
    e.index = a.index;
    e.text = a.held.substr(0, a.held.size() - keep);
    a.held.erase(0, a.held.size() - keep);
    a.sent_bytes += e.text.size();
    release_logprobs(a, e, false);
    if (!e.text.empty() || !e.logprobs.empty()) a.stream->push(std::move(e));
  }
  return false;
}

void GenerationService::loop() {
  for (;;) {
    std::deque<Active> fresh;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !incoming_.empty() || !active_.empty(); });
      if (stop_) break;
      fresh.swap(incoming_);
    }
    for (Active& a : fresh) {
      std::vector<int64_t> ids;
      try {
        ids = engine_.add_samples(std::move(a.req.prompt), a.req.sampling, a.req.max_tokens, a.req.n, a.req.ignore_eos,
                                  a.req.logprobs);
      } catch (const std::exception& e) {
        GenerationEvent ev;
        ev.done = true;
        ev.finish_reason = "error";
        ev.error = e.what();
        a.stream->push(std::move(ev));
        continue;
      }
      a.req.prompt.clear();
      for (size_t i = 0; i < ids.size(); ++i) {
        auto one = std::make_unique<Active>();
        one->stream = a.stream;
        one->req = a.req;
        one->seq_id = ids[i];
        one->index = int32_t(i);
        one->submitted = a.submitted;
        active_.push_back(std::move(one));
      }
    }
    // Cancelled requests (disconnected clients) free their blocks before the next step.
    for (auto& a : active_)
      if (a->stream->cancelled()) engine_.cancel(a->seq_id);

    try {
      engine_.step();
    } catch (const std::exception& e) {
      // A failing step (out of memory, a kernel error) ends every request with the error rather
      // than taking the server down.
      for (auto& a : active_) {
        engine_.cancel(a->seq_id);
        GenerationEvent ev;
        ev.done = true;
        ev.finish_reason = "error";
        ev.error = e.what();
        engine_.release(a->seq_id);
        a->stream->push(std::move(ev));
      }
      active_.clear();
    }
    active_.erase(std::remove_if(active_.begin(), active_.end(), [&](const std::unique_ptr<Active>& a) { return emit(*a); }),
                  active_.end());

    const Engine::KvUsage kvu = engine_.kv_usage();
    const Scheduler& sch = engine_.scheduler();
    const PrefixCache& pc = engine_.prefix_cache();
    std::lock_guard<std::mutex> lk(mu_);
    stats_.waiting = int64_t(sch.n_waiting());
    stats_.running = int64_t(sch.n_running());
    stats_.preemptions = int64_t(sch.n_preemptions());
    stats_.swapped_out = int64_t(sch.n_swapped_out());
    stats_.swapped_in = int64_t(sch.n_swapped_in());
    stats_.kv_blocks_total = engine_.kv().geometry().n_blocks;
    stats_.kv_blocks_free = pc.n_available();
    stats_.kv_blocks_cached = pc.n_cached();
    stats_.prefix_hits = pc.hits();
    stats_.prefix_lookups = pc.lookups();
    stats_.kv_slots_allocated = kvu.slots_allocated;
    stats_.kv_slots_filled = kvu.slots_filled;
  }
  for (auto& a : active_) {
    engine_.release(a->seq_id);
    GenerationEvent ev;
    ev.done = true;
    ev.finish_reason = "cancelled";
    a->stream->push(std::move(ev));
  }
  for (Active& a : incoming_) {
    GenerationEvent ev;
    ev.done = true;
    ev.finish_reason = "cancelled";
    a.stream->push(std::move(ev));
  }
}

}  // namespace squeeze
