#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>

#include "server/openai_api.h"

namespace squeeze {

using json = nlohmann::ordered_json;  // responses keep their keys in insertion order

namespace {

std::atomic<uint64_t> g_request_counter{0};

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "") {
  const char* type = status == 401 ? "authentication_error" : status == 404 ? "not_found_error"
                   : status >= 500 ? "server_error" : "invalid_request_error";
  res.status = status;
  res.set_content(dump_json(error_json(message, type, param)), "application/json");
}

json usage_json(const GenerationEvent& e) {
  return json{{"prompt_tokens", e.prompt_tokens},
              {"completion_tokens", e.completion_tokens},
              {"total_tokens", e.prompt_tokens + e.completion_tokens}};
}

}  // namespace

HttpServer::HttpServer(GenerationService& service, const Tokenizer& tokenizer, const ServerConfig& cfg)
    : service_(service), tok_(tokenizer), cfg_(cfg), http_(std::make_unique<httplib::Server>()) {
  httplib::Server& s = *http_;
  const size_t n_threads = size_t(std::max(8, cfg_.http_threads));
  s.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
  // The listening socket, to raise its accept backlog in listen(). httplib's own options as well.
  s.set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = int(sock);
  });

  // Authentication for everything under /v1 when an API key is set.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (cfg_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") != "Bearer " + cfg_.api_key) {
      send_error(res, 401, "invalid or missing API key (Authorization: Bearer KEY)");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, what);
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) send_error(res, res.status, "no route for " + req.method + " " + req.path);
  });

  s.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });

  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const json j = {{"object", "list"},
                    {"data", json::array({{{"id", cfg_.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "squeeze"}}})}};
    res.set_content(dump_json(j), "application/json");
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const GenerationService::Stats st = service_.stats();
    std::string m;
    auto gauge = [&](const char* name, const char* help, double v) {
      m += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " + std::to_string(v) + "\n";
    };
    auto counter = [&](const char* name, const char* help, double v) {
      m += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " + std::to_string(v) + "\n";
    };
    gauge("squeeze_requests_waiting", "Sequences waiting for admission.", double(st.waiting));
    gauge("squeeze_requests_running", "Sequences running.", double(st.running));
    counter("squeeze_preemptions_total", "Sequences preempted to free KV blocks.", double(st.preemptions));
    counter("squeeze_kv_swapped_out_total", "Preemptions that copied the sequence's KV to the swap space.",
            double(st.swapped_out));
    counter("squeeze_kv_swapped_in_total", "Preempted sequences whose KV was copied back from the swap space.",
            double(st.swapped_in));
    gauge("squeeze_kv_blocks_total", "KV blocks in the pool.", double(st.kv_blocks_total));
    gauge("squeeze_kv_blocks_free", "KV blocks free or idle in the prefix cache.", double(st.kv_blocks_free));
    gauge("squeeze_kv_blocks_used", "KV blocks held by sequences.", double(st.kv_blocks_total - st.kv_blocks_free));
    gauge("squeeze_kv_blocks_cached", "KV blocks indexed by the prefix cache.", double(st.kv_blocks_cached));
    gauge("squeeze_prefix_cache_hit_rate", "Share of looked-up full prompt blocks found in the prefix cache.",
          st.prefix_lookups ? double(st.prefix_hits) / double(st.prefix_lookups) : 0.0);
    gauge("squeeze_kv_slots_allocated", "KV token slots in blocks held by running sequences.", double(st.kv_slots_allocated));
    gauge("squeeze_kv_slots_filled", "Of those, slots holding a token.", double(st.kv_slots_filled));
    counter("squeeze_prompt_tokens_total", "Prompt tokens of finished requests.", double(st.prompt_tokens));
    counter("squeeze_generation_tokens_total", "Generated tokens of finished requests.", double(st.generated_tokens));
    counter("squeeze_requests_finished_total", "Finished requests.", double(st.requests_finished));
    m += st.ttft.render("squeeze_time_to_first_token_seconds", "Time from request to its first generated token.");
    m += st.tpot.render("squeeze_time_per_output_token_seconds", "Mean time per generated token after the first, per request.");
    res.set_content(m, "text/plain; version=0.0.4");
  });

  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    CompletionRequest cr;
    try {
      cr = parse_completion_request(req.body, tok_, cfg_.model_name, cfg_.n_ctx, cfg_.n_vocab);
    } catch (const ApiError& e) {
      return send_error(res, e.status, e.what(), e.param);
    } catch (const std::exception& e) {
      return send_error(res, 400, e.what());
    }
    respond(std::move(cr), false, res);
  });

  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    CompletionRequest cr;
    try {
      cr = parse_chat_request(req.body, cfg_.chat, cfg_.model_name, cfg_.n_ctx);
    } catch (const ApiError& e) {
      return send_error(res, e.status, e.what(), e.param);
    } catch (const std::exception& e) {
      return send_error(res, 400, e.what());
    }
    respond(std::move(cr), true, res);
  });
}

// One response for both endpoints: they differ only in object names and in how a choice carries
// its text ("text" vs a chat "message" / streamed "delta").
void HttpServer::respond(CompletionRequest cr, bool chat, httplib::Response& res) {
  const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++g_request_counter);
  const int64_t created = unix_time();
  const std::string model = cfg_.model_name;
  const std::string echo = cr.echo ? cr.prompt_text : "";
  const int32_t n = cr.gen.n;
  const bool include_usage = cr.include_usage;
  const bool logprobs = cr.gen.logprobs >= 0;
  // A choice's (or chunk's) logprobs object, null when none were asked for or none are due.
  auto logprobs_json = [chat, logprobs](const std::vector<TokenLogprobs>& entries, bool whole_choice) -> json {
    if (!logprobs || (entries.empty() && !whole_choice)) return nullptr;
    return chat ? chat_logprobs_json(entries) : completion_logprobs_json(entries);
  };
  std::shared_ptr<Stream> stream = service_.submit(std::move(cr.gen));

  if (!cr.stream) {
    std::vector<std::string> texts(static_cast<size_t>(n), echo);
    std::vector<std::string> reasons(static_cast<size_t>(n));
    std::vector<std::vector<TokenLogprobs>> lps(static_cast<size_t>(n));
    GenerationEvent usage;
    for (int32_t done = 0; done < n;) {
      GenerationEvent e = stream->next();
      if (e.finish_reason == "error") return send_error(res, 400, e.error);
      texts[size_t(e.index)] += e.text;
      auto& lp = lps[size_t(e.index)];
      lp.insert(lp.end(), std::make_move_iterator(e.logprobs.begin()), std::make_move_iterator(e.logprobs.end()));
      if (e.done) {
        reasons[size_t(e.index)] = e.finish_reason;
        usage.prompt_tokens = e.prompt_tokens;
        usage.completion_tokens += e.completion_tokens;
        ++done;
      }
    }
    json choices = json::array();
    for (int32_t i = 0; i < n; ++i) {
      json c = {{"index", i}};
      if (chat) c["message"] = {{"role", "assistant"}, {"content", texts[size_t(i)]}};
      else c["text"] = texts[size_t(i)];
      c["logprobs"] = logprobs_json(lps[size_t(i)], true);
      c["finish_reason"] = reasons[size_t(i)];
      choices.push_back(std::move(c));
    }
    const json j = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
                    {"model", model}, {"choices", choices}, {"usage", usage_json(usage)}};
    res.set_content(dump_json(j), "application/json");
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream, id, created, model, echo, include_usage, n, chat, logprobs_json, started = false, done = 0,
       usage = GenerationEvent()](size_t, httplib::DataSink& sink) mutable {
        auto send = [&](const json& j) {
          const std::string line = "data: " + dump_json(j) + "\n\n";
          return sink.write(line.data(), line.size());
        };
        auto chunk = [&](json choice) {
          return json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                      {"model", model}, {"choices", json::array({std::move(choice)})}};
        };
        auto piece = [&](int32_t index, const std::string& text, const json& finish,
                         const std::vector<TokenLogprobs>& lps = {}) {
          json c = {{"index", index}};
          if (chat) c["delta"] = text.empty() ? json::object() : json{{"content", text}};
          else c["text"] = text;
          c["logprobs"] = logprobs_json(lps, false);  // the entries of this chunk's tokens
          c["finish_reason"] = finish;
          return chunk(std::move(c));
        };
        if (!started) {  // chat streams open every choice with the assistant role; echo goes first
          started = true;
          for (int32_t i = 0; i < n; ++i) {
            if (chat && !send(chunk({{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                                     {"finish_reason", nullptr}})))
              return stream->cancel(), false;
            if (!echo.empty() && !send(piece(i, echo, nullptr))) return stream->cancel(), false;
          }
        }
        const GenerationEvent e = stream->next();
        if (e.finish_reason == "error") {
          send(json(error_json(e.error, "invalid_request_error", "")));
        } else {
          if (!e.text.empty() || e.done || !e.logprobs.empty()) {
            if (!send(piece(e.index, e.text, e.done ? json(e.finish_reason) : json(nullptr), e.logprobs)))
              return stream->cancel(), false;
          }
          if (e.done) {
            usage.prompt_tokens = e.prompt_tokens;
            usage.completion_tokens += e.completion_tokens;
            ++done;
          }
          if (done < n) return true;
          if (include_usage) {
            json u = {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                      {"model", model}, {"choices", json::array()}, {"usage", usage_json(usage)}};
            send(u);
          }
        }
        static const char kDone[] = "data: [DONE]\n\n";
        sink.write(kDone, sizeof(kDone) - 1);
        sink.done();
        return true;
      },
      [stream](bool success) {
        if (!success) stream->cancel();  // the client went away: free its blocks
      });
}

HttpServer::~HttpServer() = default;

bool HttpServer::listen() {
  if (cfg_.port == 0) {
    bound_port_ = http_->bind_to_any_port(cfg_.host);
    if (bound_port_ < 0) return false;
  } else {
    if (!http_->bind_to_port(cfg_.host, cfg_.port)) {
      std::fprintf(stderr, "error: cannot listen on %s:%d\n", cfg_.host.c_str(), cfg_.port);
      return false;
    }
    bound_port_ = cfg_.port;
  }
  // Debian's httplib is a shared library built with an accept backlog of 5 (its
  // CPPHTTPLIB_LISTEN_BACKLOG, fixed when the library was built): a burst of clients connecting at
  // once (a benchmark's 128 concurrent requests) overflowed it, and connections the kernel could
  // not queue were reset. listen() again on the bound socket sets the backlog.
  if (listen_fd_ >= 0 && ::listen(listen_fd_, kListenBacklog) != 0)
    std::fprintf(stderr, "squeeze: warning: could not raise the accept backlog to %d\n", kListenBacklog);
  std::fprintf(stderr, "squeeze: serving %s on http://%s:%d/v1\n", cfg_.model_name.c_str(), cfg_.host.c_str(), bound_port_);
  return http_->listen_after_bind();
}

void HttpServer::stop() { http_->stop(); }

int HttpServer::port() const { return bound_port_; }

}  // namespace squeeze
