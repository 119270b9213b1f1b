#include "herd/server/http_server.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <random>

#include "herd/base/log.h"
#include "herd/runtime/request_check.h"
#include "herd/server/api_request.h"
#include "herd/server/connection_probe.h"
#include "herd/server/image_prompt.h"
#include "herd/server/openai_format.h"
#include "herd/server/tool_grammar.h"
#include "herd/server/tool_stream.h"
#include "herd/tokenizer/chat_format.h"

namespace herd::server {

using namespace std::chrono_literals;

namespace {

const char* finish_name(FinishReason r) {
  return r == FinishReason::kLength ? "length" : "stop";
}

// A request that failed before any token: status + OpenAI error object.
struct HttpError {
  int status;
  std::string message;
};

// What one choice accumulates (non-streamed) or tracks (streamed).
struct ChoiceState {
  explicit ChoiceState(bool tools) : text(tools) {}
  ToolStream text;
  std::vector<TokenLogprob> logprobs;
  int64_t text_offset = 0;  // completions logprobs: bytes of text sent before
  bool finished = false;
  FinishReason reason = FinishReason::kStop;
  int64_t prompt_tokens = 0, reused = 0, generated = 0;
};

Usage usage_of(const std::vector<ChoiceState>& choices) {
  Usage u;
  for (const ChoiceState& c : choices) {
    u.prompt_tokens = std::max(u.prompt_tokens, c.prompt_tokens);
    u.cached_tokens = std::max(u.cached_tokens, c.reused);
    u.completion_tokens += c.generated;
  }
  return u;
}

}  // namespace

struct HttpServer::Impl {
  Impl(Engine& e, const ServerOptions& o)
      : engine(e), opt(o), worker(e, metrics, WorkerOptions{o.max_seqs, o.max_pending}) {
    created = int64_t(std::time(nullptr));
    fingerprint = "fp_herd_" + std::to_string(created);
  }

  Engine& engine;
  ServerOptions opt;
  Metrics metrics;
  EngineWorker worker;
  httplib::Server http;
  int64_t created = 0;
  std::string fingerprint;
  std::atomic<bool> draining{false};
  // Every token's bytes, built at the first forced tool call (constrained decoding).
  std::once_flag token_bytes_once;
  std::shared_ptr<const TokenBytes> token_bytes;
  std::mutex inflight_mu;
  std::condition_variable inflight_cv;
  int64_t inflight = 0;

  void begin() {
    std::lock_guard lock(inflight_mu);
    ++inflight;
  }
  void end() {
    {
      std::lock_guard lock(inflight_mu);
      --inflight;
    }
    inflight_cv.notify_all();
  }

  void reply_error(httplib::Response& res, int status, const std::string& message) {
    metrics.count_request(status);
    res.status = status;
    res.set_content(dump(error_body(status, message)), "application/json");
  }

  bool authorized(const httplib::Request& req, httplib::Response& res) {
    if (opt.api_key.empty()) return true;
    const std::string h = req.get_header_value("Authorization");
    const std::string want = "Bearer " + opt.api_key;
    // Compare every byte regardless of where they differ (no early exit on the key).
    bool same = h.size() == want.size();
    unsigned diff = 0;
    for (size_t i = 0; i < want.size(); ++i) diff |= unsigned(i < h.size() ? h[i] : 0) ^ want[i];
    if (same && diff == 0) return true;
    reply_error(res, 401,
                h.empty() ? "missing API key: send Authorization: Bearer <key>"
                          : "invalid API key in the Authorization header");
    return false;
  }

  void setup();
  void handle_generate(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  // Moves the request's images into the job (they are large and needed only there).
  Result<std::shared_ptr<Job>> prepare(ApiRequest& r, int& status);
  void respond_whole(const httplib::Request& req, const ApiRequest& r,
                     const std::shared_ptr<Job>& job, httplib::Response& res);
  void respond_stream(const ApiRequest& r, const std::shared_ptr<Job>& job, httplib::Response& res);
};

void HttpServer::Impl::setup() {
  const int threads = opt.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http.set_payload_max_length(opt.max_body_bytes);
  http.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 413
                          ? fmt::format("request body: larger than {} bytes", opt.max_body_bytes)
                      : res.status == 404 ? "no such route"
                                          : "request failed";
    metrics.count_request(res.status);
    res.set_content(dump(error_body(res.status, msg)), "application/json");
  });
  http.set_exception_handler(
      [this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = std::string("internal error: ") + e.what();
        } catch (...) {
        }
        log(LogLevel::kError, "{}", what);
        reply_error(res, 500, what);
      });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.status = draining ? 503 : 200;
    res.set_content(draining ? R"({"status":"draining"})" : R"({"status":"ok"})",
                    "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    res.set_content(dump(models_list(opt.model_name, created)), "application/json");
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generate(req, res, Endpoint::kChat);
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generate(req, res, Endpoint::kCompletions);
  });
}

Result<std::shared_ptr<Job>> HttpServer::Impl::prepare(ApiRequest& r, int& status) {
  status = 400;
  const Tokenizer& tok = engine.tokenizer();
  auto job = std::make_shared<Job>();
  JobSpec& spec = job->spec;
  if (r.endpoint == Endpoint::kChat) {
    ChatOptions co;
    if (r.tools && r.tool_choice != ToolChoice::kNone) co.tools = *r.tools;
    HERD_ASSIGN_OR_RETURN(RenderedChat chat, render_chat(tok, r.messages, co));
    spec.prompt = std::move(chat.ids);
    if (!r.images.empty()) {
      chat.ids = std::move(spec.prompt);
      HERD_ASSIGN_OR_RETURN(ImagePrompt p,
                            chat_prompt_with_images(tok, chat, r.images, opt.images));
      spec.prompt = std::move(p.ids);
      spec.images = std::move(r.images);
      spec.image_patch_runs = std::move(p.patch_runs);
    }
    spec.keep_special = co.tools.has_value();
    if (co.tools &&
        (r.tool_choice == ToolChoice::kRequired || r.tool_choice == ToolChoice::kNamed)) {
      // OpenAI promises a call here: the output is held to the pythonic call grammar of the
      // given tools (spec §4.4), so it always parses into tool_calls.
      HERD_ASSIGN_OR_RETURN(
          std::shared_ptr<const ToolSchema> schema,
          compile_tool_schema(*co.tools, r.tool_choice == ToolChoice::kNamed ? r.tool_name : ""));
      std::call_once(token_bytes_once, [&] { token_bytes = TokenBytes::of(tok); });
      spec.constraint = std::make_shared<GrammarConstraint<ToolCallGrammar>>(
          token_bytes, ToolCallGrammar(std::move(schema)));
    }
  } else if (!r.prompt_ids.empty()) {
    for (size_t i = 0; i < r.prompt_ids.size(); ++i)
      if (r.prompt_ids[i] >= tok.vocab_size())
        return make_error("prompt[{}]: token id {} is outside the vocabulary (size {})", i,
                          r.prompt_ids[i], tok.vocab_size());
    spec.prompt = r.prompt_ids;
  } else {
    spec.prompt = engine.encode_prompt(r.prompt_text, /*add_bos=*/true);
  }
  const int64_t prompt = int64_t(spec.prompt.size());
  const int64_t context = worker.context();
  if (prompt >= context)
    return make_error(
        "{}: the prompt is {} tokens, the context is {} (at least one token "
        "must be left to generate)",
        r.endpoint == Endpoint::kChat ? "messages" : "prompt", prompt, context);
  spec.max_tokens =
      r.max_tokens ? *r.max_tokens : std::min(opt.default_max_tokens, context - prompt);
  HERD_TRY(check_generation_length(prompt, spec.max_tokens, context, RequestNaming::kApiFields));
  spec.sampling = engine.sampling_defaults();
  if (!r.sampling.seed) spec.sampling.seed = std::random_device{}();
  r.sampling.apply(spec.sampling);
  HERD_TRY(check_sampling(spec.sampling, RequestNaming::kApiFields));
  spec.n = r.n;
  spec.stop = r.stop;
  spec.logprobs = r.logprobs;
  spec.cache_prompt = r.cache_prompt;
  spec.top_logprobs = r.top_logprobs;
  status = 200;
  return job;
}

void HttpServer::Impl::handle_generate(const httplib::Request& req, httplib::Response& res,
                                       Endpoint ep) {
  if (!authorized(req, res)) return;
  if (draining) return reply_error(res, 503, "the server is shutting down");
  auto parsed = parse_api_request(req.body, ep, opt.images);
  if (!parsed) return reply_error(res, 400, parsed.status().message());
  ApiRequest& r = *parsed;
  if (!r.model.empty() && r.model != opt.model_name)
    return reply_error(res, 404,
                       fmt::format("model: \"{}\" is not served here (this server has \"{}\")",
                                   r.model, opt.model_name));
  int status = 400;
  auto job = prepare(r, status);
  if (!job) return reply_error(res, status, job.status().message());
  auto submitted = (*job)->submitted.get_future();
  if (Status s = worker.enqueue(*job); !s)
    return reply_error(res, worker.draining() ? 503 : 429, s.message());
  if (Status s = submitted.get(); !s) return reply_error(res, 400, s.message());
  if (r.stream) return respond_stream(r, *job, res);
  respond_whole(req, r, *job, res);
}

void HttpServer::Impl::respond_whole(const httplib::Request& req, const ApiRequest& r,
                                     const std::shared_ptr<Job>& job, httplib::Response& res) {
  begin();
  // A client that gives up (timeout, closed tab) before the whole answer is ready gets its
  // sequences stopped, as a streaming client does.
  const auto probe =
      ConnectionProbe::find(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  const bool tools = r.tools && r.tool_choice != ToolChoice::kNone;
  std::vector<ChoiceState> choices(size_t(r.n), ChoiceState(tools));
  int open = r.n;
  std::vector<ChoiceEvent> events;
  Status error;
  while (open > 0) {
    events.clear();
    job->channel.pop_all(events, 100ms);
    for (ChoiceEvent& e : events) {
      ChoiceState& c = choices[size_t(e.index)];
      c.text.add(e.text);
      for (auto& lp : e.logprobs) c.logprobs.push_back(std::move(lp));
      if (!e.finished) continue;
      c.finished = true;
      c.reason = e.reason;
      c.prompt_tokens = e.prompt_tokens;
      c.reused = e.reused_tokens;
      c.generated = e.generated;
      if (e.reason == FinishReason::kError) error = e.error;
      --open;
    }
    if (open > 0 && probe && probe->peer_closed()) {
      worker.cancel(job);
      metrics.count_request(499);  // nginx's "client closed request": nobody got an answer
      end();
      return;
    }
  }
  end();
  if (!error) return reply_error(res, 500, error.message());
  const Tokenizer& tok = engine.tokenizer();
  ojson out = ojson::array();
  ResponseMeta meta{new_id(r.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-"),
                    int64_t(std::time(nullptr)), opt.model_name, fingerprint};
  for (int i = 0; i < r.n; ++i) {
    ChoiceState& c = choices[size_t(i)];
    ParsedAssistant p;
    if (tools) {
      p = parse_tool_calls(c.text.text());
    } else {
      p.content = c.text.text();
    }
    const char* reason = p.tool_calls.empty() ? finish_name(c.reason) : "tool_calls";
    if (r.endpoint == Endpoint::kChat) {
      out.push_back(
          chat_choice(i, p, reason, r.logprobs ? chat_logprobs(tok, c.logprobs) : ojson(nullptr)));
    } else {
      out.push_back(
          text_choice(i, p.content, reason,
                      r.logprobs ? completion_logprobs(tok, c.logprobs, 0) : ojson(nullptr)));
    }
  }
  const Usage u = usage_of(choices);
  metrics.count_request(200);
  res.set_content(dump(r.endpoint == Endpoint::kChat ? chat_completion(meta, std::move(out), u)
                                                     : text_completion(meta, std::move(out), u)),
                  "application/json");
}

void HttpServer::Impl::respond_stream(const ApiRequest& r, const std::shared_ptr<Job>& job,
                                      httplib::Response& res) {
  struct Stream {
    ApiRequest req;
    ResponseMeta meta;
    std::vector<ChoiceState> choices;
    int open = 0;
    bool started = false;
  };
  const bool tools = r.tools && r.tool_choice != ToolChoice::kNone;
  auto st = std::make_shared<Stream>(
      Stream{r,
             {new_id(r.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-"),
              int64_t(std::time(nullptr)), opt.model_name, fingerprint},
             std::vector<ChoiceState>(size_t(r.n), ChoiceState(tools)),
             r.n,
             false});
  begin();
  metrics.count_request(200);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, st, job](size_t, httplib::DataSink& sink) {
        const bool chat = st->req.endpoint == Endpoint::kChat;
        const Tokenizer& tok = engine.tokenizer();
        std::string out;
        if (!st->started) {
          st->started = true;
          if (chat)
            for (int i = 0; i < st->req.n; ++i)
              out += sse_event(
                  chat_chunk(st->meta, i, {{"role", "assistant"}, {"content", ""}}, nullptr));
        }
        std::vector<ChoiceEvent> events;
        if (out.empty() && !job->channel.pop_all(events, 100ms)) {
          // Nothing to say: make sure the client is still there.
          if (!sink.is_writable()) {
            worker.cancel(job);
            return false;
          }
          return true;
        }
        for (ChoiceEvent& e : events) {
          ChoiceState& c = st->choices[size_t(e.index)];
          const std::string delta = c.text.add(e.text);
          ojson lp = nullptr;
          if (st->req.logprobs && !e.logprobs.empty())
            lp = chat ? chat_logprobs(tok, e.logprobs)
                      : completion_logprobs(tok, e.logprobs, c.text_offset);
          if (!delta.empty() || !lp.is_null()) {
            if (chat)
              out += sse_event(chat_chunk(st->meta, e.index, {{"content", delta}}, nullptr, lp));
            else
              out += sse_event(text_completion(
                  st->meta, ojson::array({text_choice(e.index, delta, nullptr, lp)}),
                  std::nullopt));
            c.text_offset += int64_t(delta.size());
          }
          if (!e.finished) continue;
          c.prompt_tokens = e.prompt_tokens;
          c.reused = e.reused_tokens;
          c.generated = e.generated;
          --st->open;
          ParsedAssistant p = c.text.finish();
          const char* reason = p.tool_calls.empty() ? finish_name(e.reason) : "tool_calls";
          if (e.reason == FinishReason::kError) {
            out += sse_event(error_body(500, e.error.message()));
            continue;
          }
          if (chat) {
            if (!p.content.empty())
              out += sse_event(chat_chunk(st->meta, e.index, {{"content", p.content}}, nullptr));
            if (!p.tool_calls.empty())
              out += sse_event(chat_chunk(
                  st->meta, e.index,
                  {{"tool_calls", tool_call_deltas(p.tool_calls, new_id("call_") + "_")}},
                  nullptr));
            out += sse_event(chat_chunk(st->meta, e.index, ojson::object(), reason));
          } else {
            out += sse_event(text_completion(
                st->meta, ojson::array({text_choice(e.index, p.content, reason, nullptr)}),
                std::nullopt));
          }
        }
        const bool last = st->open == 0;
        if (last) {
          if (st->req.include_usage) {
            const Usage u = usage_of(st->choices);
            out += sse_event(chat ? chat_usage_chunk(st->meta, u)
                                  : text_completion(st->meta, ojson::array(), u));
          }
          out += sse_done();
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          worker.cancel(job);
          return false;
        }
        if (last) sink.done();
        return true;
      },
      [this, job](bool success) {
        if (!success) worker.cancel(job);
        end();
      });
}

HttpServer::HttpServer(Engine& engine, const ServerOptions& opt)
    : impl_(std::make_unique<Impl>(engine, opt)) {
  impl_->setup();
}

HttpServer::~HttpServer() = default;

Status HttpServer::run() {
  if (!impl_->http.bind_to_port(impl_->opt.host, impl_->opt.port))
    return make_error("--port: cannot listen on {}:{} (in use, or not an address of this host)",
                      impl_->opt.host, impl_->opt.port);
  log(LogLevel::kInfo, "serving {} on http://{}:{}", impl_->opt.model_name, impl_->opt.host,
      impl_->opt.port);
  impl_->http.listen_after_bind();
  return Status::ok();
}

void HttpServer::shutdown() {
  Impl& s = *impl_;
  s.draining = true;
  {
    // In-flight requests finish (streams included) before the listener closes.
    std::unique_lock lock(s.inflight_mu);
    s.inflight_cv.wait(lock, [&] { return s.inflight == 0; });
  }
  s.http.stop();
  s.worker.drain();
}

}  // namespace herd::server
