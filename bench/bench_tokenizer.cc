// Tokenizer throughput (single thread = per core): encode MB/s on English prose and on the
// conformance corpus. The corpus is the one tests/integration/tokenizer/make_corpus.mjs
// writes; point HERD_TOKENIZER_CORPUS at it (the conformance test leaves it in
// build/tests/integration/tokenizer-conformance/corpus.jsonl).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "herd/tokenizer/tokenizer.h"

namespace {

const herd::Tokenizer& tokenizer() {
  static herd::Tokenizer tok =
      herd::Tokenizer::from_tiktoken_file(std::string(HERD_SHARED_DIR) + "/llama4/tokenizer.model")
          .value();
  return tok;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ~1 MB of English prose: the Llama 4 license and use policy, repeated.
const std::string& prose() {
  static std::string text = [] {
    std::string base = read(std::string(HERD_SHARED_DIR) + "/llama4/LICENSE") +
                       read(std::string(HERD_SHARED_DIR) + "/llama4/USE_POLICY.md");
    std::string t;
    while (!base.empty() && t.size() < 1000000) t += base;
    return t;
  }();
  return text;
}

const std::vector<std::string>& corpus() {
  static std::vector<std::string> strings = [] {
    const char* env = std::getenv("HERD_TOKENIZER_CORPUS");
    std::ifstream in(env ? env : HERD_DEFAULT_CORPUS);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(nlohmann::json::parse(line).get<std::string>());
    return out;
  }();
  return strings;
}

void BM_EncodeEnglishProse(benchmark::State& state) {
  const auto& tok = tokenizer();
  const std::string& text = prose();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["tokens"] = double(tokens);
}
BENCHMARK(BM_EncodeEnglishProse)->Unit(benchmark::kMillisecond);

void BM_EncodeCorpus(benchmark::State& state) {
  const auto& tok = tokenizer();
  const auto& strings = corpus();
  if (strings.empty()) {
    state.SkipWithError("no corpus: set HERD_TOKENIZER_CORPUS (see the file comment)");
    return;
  }
  size_t bytes = 0;
  for (const auto& s : strings) bytes += s.size();
  for (auto _ : state)
    for (const auto& s : strings) benchmark::DoNotOptimize(tok.encode(s, false).data());
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
}
BENCHMARK(BM_EncodeCorpus)->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const auto& tok = tokenizer();
  auto ids = tok.encode(prose(), false);
  for (auto _ : state) benchmark::DoNotOptimize(tok.decode(ids).value().data());
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(prose().size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
