// The HTTP side of `herd serve` (DESIGN.md server/): cpp-httplib routes for the OpenAI API.
// Handlers run on httplib's threads and only parse, validate, render the chat prompt, enqueue
// and then wait on their job's channel (or stream it as SSE); all model work is the
// EngineWorker's.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "herd/base/status.h"
#include "herd/runtime/engine.h"
#include "herd/server/api_request.h"
#include "herd/server/engine_worker.h"
#include "herd/server/metrics.h"

namespace herd::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;     // empty: no authentication
  std::string model_name;  // what /v1/models lists and requests must name (or omit)
  size_t max_body_bytes = size_t(8) << 20;
  int64_t default_max_tokens = 2048;  // when a request sets neither max_tokens field
  int http_threads = 64;
  int64_t max_seqs = 16;     // the scheduler's batch (--parallel)
  int64_t max_pending = 64;  // sequences waiting beyond the batch before 429
  // image_url parts: off (a 400 naming the part) unless the engine has a vision encoder.
  ImageSettings images;
};

class HttpServer {
 public:
  HttpServer(Engine& engine, const ServerOptions& opt);
  ~HttpServer();
  // Binds and serves until shutdown(); error when the address cannot be bound.
  Status run();
  // From any thread (not a signal handler): new requests get 503, in-flight ones finish, then
  // run() returns.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herd::server
