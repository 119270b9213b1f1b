// `herd serve`: the OpenAI-compatible HTTP server (server/). Opens the engine once, serves until
// SIGINT/SIGTERM, then drains: new requests get 503, in-flight ones (streams too) finish.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "herd/base/log.h"
#include "herd/cli/command.h"
#include "herd/cli/engine_flags.h"
#include "herd/cli/flag_checks.h"
#include "herd/model/vision.h"
#include "herd/server/http_server.h"

namespace herd::cli {
namespace {

struct Options {
  EngineFlags engine;
  server::ServerOptions server;
  int64_t max_body_mb = 8;
};

// The signal handler only writes a byte; a normal thread reads it and shuts down (nothing the
// shutdown does is async-signal-safe).
int g_signal_pipe[2] = {-1, -1};

void on_signal(int) {
  const char c = 1;
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &c, 1);
}

std::string default_model_name(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const size_t slash = d.rfind('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

int run_serve(Options o) {
  // Few malloc arenas (glibc's default is 8 per core), set before any thread exists: requests of
  // many sizes, parsed on whichever HTTP thread takes them, fragmented the many arenas and RSS
  // crept up for minutes without bound in sight (soak test on a Zen 1: +7% in 25 s after warm-up
  // with the default, +3% with 2 arenas; heaptrack: 62 KB still allocated at exit, no leak). An
  // explicit MALLOC_ARENA_MAX wins.
  if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
  auto opt = o.engine.options();
  if (!opt) return report(opt.status());
  // The server bounds waiting work itself (429); every submit goes through the scheduler's
  // queue before joining a batch, so that queue holds a whole batch plus the waiting ones.
  opt->sched.max_queue = opt->sched.max_seqs + o.server.max_pending;
  opt->progress = false;
  o.server.max_seqs = opt->sched.max_seqs;
  o.server.max_body_bytes = size_t(o.max_body_mb) << 20;
  if (o.server.model_name.empty()) o.server.model_name = default_model_name(o.engine.model);
  auto engine = Engine::open(*opt);
  if (!engine) return report(engine.status());
  if (!(*engine)->has_tokenizer())
    return report(Status::error("-m: the model has no tokenizer; the server needs one"));
  // Tiles and tokens per tile come from vision_config. image_url parts are a 400 ("no vision
  // encoder") unless the checkpoint holds the vision tensors (not a text-only extraction).
  o.server.images.enabled = has_vision_weights((*engine)->model());
  if (const auto& v = (*engine)->model().config.vision;
      v && v->image_size > 0 && v->patch_size > 0) {
    o.server.images.tile_size = int(v->image_size);
    o.server.images.patch_size = int(v->patch_size);
    o.server.images.pixel_shuffle_ratio = v->pixel_shuffle_ratio;
  }

  server::HttpServer srv(**engine, o.server);
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return report(Status::error("pipe: failed"));
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that goes away is a failed write, not a dead server
  std::thread watcher([&srv] {
    char c = 0;
    while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    if (c == 2) return;  // the server stopped by itself
    log(LogLevel::kInfo, "signal received: draining in-flight requests");
    srv.shutdown();
  });
  // Expert parallelism: once a rank has failed (dist/cluster.h) the cluster cannot step again.
  // The requests of the failed step have their errors; the server drains and exits.
  std::atomic<bool> serving{true};
  std::thread cluster_watch;
  if (Cluster* c = (*engine)->cluster()) {
    cluster_watch = std::thread([c, &serving] {
      while (serving && !c->broken()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!c->broken()) return;
      log(LogLevel::kError, "mpi: a rank failed; the server stops");
      const char drain = 1;
      [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &drain, 1);
    });
  }
  Status s = srv.run();
  serving = false;
  if (cluster_watch.joinable()) cluster_watch.join();
  // run() returned: after shutdown, or because binding failed; release the watcher either way.
  const char stop = 2;
  if (!s) {
    [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &stop, 1);
  }
  watcher.join();
  if (!s) return report(s);
  if ((*engine)->cluster() && (*engine)->cluster()->broken())
    return report(Status::error("mpi: a rank failed; the server stopped"));
  log(LogLevel::kInfo, "drained; bye");
  return 0;
}

CommandRegistrar reg(
    "serve", "OpenAI-compatible HTTP server (chat, completions, streaming)",
    [](CLI::App& app, std::function<int()>& run) {
      auto o = std::make_shared<Options>();
      o->engine.parallel = 8;  // a server batches by default
      o->engine.add_to(app);
      app.add_option("--host", o->server.host,
                     "Address to listen on (default 127.0.0.1: this machine only)");
      app.add_option("--port", o->server.port, "TCP port (0: any free port)")
          ->check(int_in(0, 65535));
      app.add_option("--api-key", o->server.api_key,
                     "Require Authorization: Bearer KEY on /v1/ routes");
      app.add_option("--model-name", o->server.model_name,
                     "Model id clients send (default: the model folder's name)");
      app.add_option("--max-queue", o->server.max_pending,
                     "Sequences waiting beyond the batch before 429")
          ->check(int_in(0, 1 << 20));
      app.add_option("--max-body-mb", o->max_body_mb, "Largest request body in MiB (bigger: 413)")
          ->check(int_in(1, 1024));
      app.add_option("--default-max-tokens", o->server.default_max_tokens,
                     "Reply limit when a request sets no max_tokens")
          ->check(int_in(1, kMaxTokensFlag));
      app.add_option("--http-threads", o->server.http_threads,
                     "HTTP worker threads (concurrent connections)")
          ->check(int_in(1, 4096));
      server::ImageSettings& im = o->server.images;
      app.add_option("--image-max-pixels", im.limits.max_pixels,
                     "Largest image (width x height) a request may send")
          ->check(int_in(1, int64_t(1) << 30));
      app.add_option("--image-max-side", im.limits.max_side, "Largest image width or height")
          ->check(int_in(1, 1 << 16));
      app.add_option("--image-max-tiles", im.preprocess.max_tiles,
                     "Most 336-pixel tiles per image (Llama 4: 16)")
          ->check(int_in(1, 64));
      app.add_option("--max-images", im.max_images, "Most images per request")
          ->check(int_in(0, 64));
      run = [o] { return run_serve(*o); };
    });

}  // namespace
}  // namespace herd::cli
