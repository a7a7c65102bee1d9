#pragma once
// The OpenAI-compatible HTTP front end (cpp-httplib): JSON requests are validated and turned into
// GenerationRequests; responses are JSON or server-sent events. Every error is an HTTP status
// with an OpenAI-style error object; nothing a client sends can take the server down.
#include <cstdint>
#include <memory>
#include <string>

#include "engine/chat_prompt.h"
#include "server/generation_service.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
class Server;
struct Response;
}

namespace squeeze {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;     // empty: no authentication
  std::string model_name;  // what /v1/models reports and requests may name
  int32_t n_ctx = 4096;
  int32_t n_vocab = 0;
  const ChatPrompt* chat = nullptr;
  // HTTP worker threads: every open (streaming) request holds one while it waits on the engine,
  // so this bounds the concurrent requests; cpp-httplib's default is only 8.
  int http_threads = 128;  // the model's chat template; null: /v1/chat/completions is a 400
};

struct CompletionRequest;

class HttpServer {
 public:
  HttpServer(GenerationService& service, const Tokenizer& tokenizer, const ServerConfig& cfg);
  ~HttpServer();
  // Binds and serves until stop(); returns false (with a message on stderr) if it cannot bind.
  bool listen();
  void stop();
  int port() const;  // the bound port (useful with port 0)

 private:
  void respond(CompletionRequest cr, bool chat, httplib::Response& res);

  GenerationService& service_;
  const Tokenizer& tok_;
  ServerConfig cfg_;
  std::unique_ptr<httplib::Server> http_;
  int bound_port_ = 0;
  int listen_fd_ = -1;  // the listening socket (set while binding)
  static constexpr int kListenBacklog = 1024;
};

}  // namespace squeeze
