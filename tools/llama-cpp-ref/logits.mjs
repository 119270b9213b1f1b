#!/usr/bin/env node
// Raw logits from llama.cpp (the pinned node-llama-cpp prebuilt, CPU only) for herd's
// conformance test. See README.md beside this file.
//
//   node logits.mjs MODEL.gguf TOKENS POSITIONS OUT.bin [N]
//   node logits.mjs MODEL.gguf TOKENS POSITIONS OUT.bin N [TOKENS POSITIONS OUT.bin N]...
//
// TOKENS     file holding the token ids: a JSON array or a comma/space separated list
// POSITIONS  prompt positions whose next-token logits to dump: "all", or a comma list where
//            negative values count from the end (e.g. 0,17,-1)
// OUT.bin    little-endian float32 rows, one vocab-sized row per requested position, in
//            ascending position order (duplicates removed)
// N          greedy continuation length (default 0): the argmax at each step, ties going to
//            the lowest token id; written with the metadata to OUT.bin.json as
//            {"positions": [...], "vocab": V, "n_prompt": P, "greedy": [...]}
//
// Several prompts (groups of four) share one model load; each starts from an empty KV cache.
// The greedy steps use llama.cpp's own greedy sampler (temperature 0: the first maximum in id
// order, the same rule) instead of returning the whole logits row, which costs ~0.15 s per row
// for a 202048-token vocabulary; where the last prompt position's row is dumped anyway, the
// sampler's choice is checked against its argmax.
//
// Exits 0 right after writing (node-llama-cpp can crash freeing a model after a long run);
// any failure prints "logits.mjs: error: ..." and exits 2.
import fs from "node:fs";
import path from "node:path";

function fail(message) {
  process.stderr.write(`logits.mjs: error: ${message}\n`);
  process.exit(2);
}

function parseTokens(file) {
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

function parsePositions(spec, n) {
  if (spec === "all") return [...Array(n).keys()];
  const out = new Set();
  for (const part of spec.split(",").filter(Boolean)) {
    let p = Number(part);
    if (!Number.isInteger(p)) fail(`bad position ${JSON.stringify(part)}`);
    if (p < 0) p += n;
    if (p < 0 || p >= n) fail(`position ${part} is outside the prompt of ${n} tokens`);
    out.add(p);
  }
  return [...out].sort((a, b) => a - b);
}

// Dense row from node-llama-cpp's {token -> logit} map; every vocab entry must be present.
function denseRow(map, vocab, where) {
  if (!map || map.size !== vocab) fail(`${where}: got ${map?.size ?? 0} logits, expected ${vocab}`);
  const row = new Float32Array(vocab);
  for (const [token, logit] of map) row[token] = logit;
  return row;
}

function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; ++i) if (row[i] > row[best]) best = i;
  return best;
}

const args = process.argv.slice(2);
const usage = "usage: node logits.mjs MODEL.gguf TOKENS POSITIONS OUT.bin [N] [TOKENS POSITIONS OUT.bin N]...";
if (args.length < 4) fail(usage);
const modelPath = args[0];
const groups = args.length === 4 ? [[...args.slice(1), "0"]] : [];
if (args.length > 4) {
  if ((args.length - 1) % 4 !== 0) fail(usage);
  for (let i = 1; i < args.length; i += 4) groups.push(args.slice(i, i + 4));
}
// One thread by default: ggml's workers poll for work, which collapses when the cores are
// shared (parallel CTest, other builds): 5 decode steps of the small preset took 17 s with 2
// threads on a loaded 2-core machine and 0.05 s with 1. Results do not depend on the count
// (each output row's dot product is computed by one thread).
const threads = Number(process.env.HERD_LLAMA_THREADS ?? 1);
if (!Number.isInteger(threads) || threads < 1) fail(`bad HERD_LLAMA_THREADS ${process.env.HERD_LLAMA_THREADS}`);
if (!fs.existsSync(modelPath)) fail(`model file ${modelPath} not found`);
const jobs = groups.map(([tokensFile, positionsSpec, outPath, n]) => {
  const nGreedy = Number(n);
  if (!Number.isInteger(nGreedy) || nGreedy < 0) fail(`bad greedy length ${n}`);
  const tokens = parseTokens(tokensFile);
  return { tokens, positions: parsePositions(positionsSpec, tokens.length), outPath, nGreedy };
});

let llamaCpp;
try {
  llamaCpp = await import("node-llama-cpp");
} catch (e) {
  fail(`cannot import node-llama-cpp (run tools/install-references.sh): ${e.message}`);
}
const { getLlama, LlamaLogLevel } = llamaCpp;

try {
  // The prebuilt CPU binary only: never build, never download, no GPU probing.
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
  for (const { tokens } of jobs)
    for (const t of tokens) if (t >= vocab) fail(`token id ${t} is outside the vocabulary (${vocab})`);
  const context = await model.createContext({
    contextSize: Math.max(...jobs.map((j) => j.tokens.length + j.nGreedy + 1)),
    threads,
    flashAttention: false,
    // F32 cache: llama.cpp's default F16 cache rounds K/V, which herd's F32 path does not.
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
  });
  const sequence = context.getSequence();
  const options = { temperature: 0 };  // greedy sampler; no penalties, no bias

  for (const { tokens, positions, outPath, nGreedy } of jobs) {
    await sequence.clearHistory();
    const want = new Set(positions);
    const last = tokens.length - 1;
    const input = tokens.map((t, i) => {
      const logits = want.has(i), token = i === last && nGreedy > 0;
      return logits || token ? [t, { generateNext: { logits, token, options } }] : t;
    });
    const results = await sequence.controlledEvaluate(input);

    const rows = new Float32Array(positions.length * vocab);
    positions.forEach((p, k) => rows.set(denseRow(results[p]?.next?.logits, vocab, `position ${p}`), k * vocab));

    const greedy = [];
    if (nGreedy > 0) {
      let next = results[last]?.next?.token;
      if (want.has(last)) {
        const k = positions.indexOf(last);
        const best = argmax(rows.subarray(k * vocab, (k + 1) * vocab));
        if (next !== best)
          fail(`llama.cpp's greedy sampler chose ${next} at position ${last}, the argmax of its logits is ${best}`);
      }
      for (;;) {
        if (!Number.isInteger(next)) fail(`greedy step ${greedy.length}: no token sampled`);
        greedy.push(next);
        if (greedy.length === nGreedy) break;
        const step = await sequence.controlledEvaluate([[next, { generateNext: { token: true, options } }]]);
        next = step[0]?.next?.token;
      }
    }

    fs.writeFileSync(outPath, Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength));
    const meta = { positions, vocab, n_prompt: tokens.length, greedy };
    fs.writeFileSync(`${outPath}.json`, JSON.stringify(meta) + "\n");
  }
} catch (e) {
  fail(e?.stack ?? String(e));
}
process.exit(0);
