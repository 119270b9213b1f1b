// Opening a GGUF with the pinned node-llama-cpp prebuilt, shared by logits.mjs and
// perplexity.mjs: the CPU binary only (never build, download or probe a GPU), and an F32 KV cache
// (llama.cpp's default F16 cache rounds K/V, which herd's f32 path does not).
import fs from "node:fs";
import path from "node:path";

export function failWith(tool) {
  return (message) => {
    process.stderr.write(`${tool}: error: ${message}\n`);
    process.exit(2);
  };
}

// One thread by default: ggml's workers poll for work, which collapses when the cores are
// shared (parallel CTest, other builds): 5 decode steps of the small preset took 17 s with 2
// threads on a loaded 2-core machine and 0.05 s with 1. Results do not depend on the count
// (each output row's dot product is computed by one thread).
export function threadCount(fail) {
  const threads = Number(process.env.HERD_LLAMA_THREADS ?? 1);
  if (!Number.isInteger(threads) || threads < 1) fail(`bad HERD_LLAMA_THREADS ${process.env.HERD_LLAMA_THREADS}`);
  return threads;
}

// { model, vocab, createContext(size) } for MODEL.gguf.
export async function openModel(modelPath, threads, fail) {
  if (!fs.existsSync(modelPath)) fail(`model file ${modelPath} not found`);
  let llamaCpp;
  try {
    llamaCpp = await import("node-llama-cpp");
  } catch (e) {
    fail(`cannot import node-llama-cpp (run tools/install-references.sh): ${e.message}`);
  }
  const { getLlama, LlamaLogLevel } = llamaCpp;
  const llama = await getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    usePrebuiltBinaries: true,
    progressLogs: false,
    maxThreads: threads,
    // HERD_LLAMA_LOG=warn|info|debug shows llama.cpp's own loading messages.
    logLevel: LlamaLogLevel[process.env.HERD_LLAMA_LOG ?? "error"] ?? LlamaLogLevel.error,
  });
  const model = await llama.loadModel({ modelPath: path.resolve(modelPath), gpuLayers: 0 });
  // The vocabulary size is token_embd's row count (ne = {n_embd, n_vocab}).
  const embd = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight");
  if (!embd) fail(`${modelPath}: no token_embd.weight tensor`);
  const vocab = Number(embd.dimensions[1]);
  const createContext = (contextSize) => model.createContext({
    contextSize, threads, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
  });
  return { model, vocab, createContext };
}

// Dense row from node-llama-cpp's {token -> logit} map; every vocab entry must be present.
export function denseRow(map, vocab, where, fail) {
  if (!map || map.size !== vocab) fail(`${where}: got ${map?.size ?? 0} logits, expected ${vocab}`);
  const row = new Float32Array(vocab);
  for (const [token, logit] of map) row[token] = logit;
  return row;
}

export function parseTokens(file, fail) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch (e) {
    fail(`cannot read token file ${file}: ${e.message}`);
  }
  const values = text.startsWith("[") ? JSON.parse(text) : text.split(/[\s,]+/).filter(Boolean);
  const tokens = values.map(Number);
  if (tokens.length === 0) fail(`${file}: no token ids`);
  for (const t of tokens)
    if (!Number.isInteger(t) || t < 0) fail(`${file}: bad token id ${JSON.stringify(t)}`);
  return tokens;
}

// Logit rows of a raw little-endian f32 file (herd logits -o), `vocab` floats each.
export function readRows(file, vocab) {
  const buf = fs.readFileSync(file);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const rows = [];
  for (let i = 0; i < all.length; i += vocab) rows.push(all.subarray(i, i + vocab));
  return rows;
}

export function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; ++i) if (row[i] > row[best]) best = i;
  return best;
}

export function stddev(row) {
  let s = 0, s2 = 0;
  for (const x of row) s += x, s2 += x * x;
  const m = s / row.length;
  return Math.sqrt(Math.max(0, s2 / row.length - m * m));
}
