#!/usr/bin/env node
// Raw logits from llama.cpp (the pinned node-llama-cpp prebuilt, CPU only) for herd's
// conformance test. See README.md beside this file.
//
//   node logits.mjs MODEL.gguf TOKENS POSITIONS OUT.bin [N]
//
// TOKENS     file holding the token ids: a JSON array or a comma/space separated list
// POSITIONS  prompt positions whose next-token logits to dump: "all", or a comma list where
//            negative values count from the end (e.g. 0,17,-1)
// OUT.bin    little-endian float32 rows, one vocab-sized row per requested position, in
//            ascending position order (duplicates removed)
// N          greedy continuation length (default 0): argmax of the raw logits at each step,
//            ties going to the lowest token id; written with the metadata to OUT.bin.json as
//            {"positions": [...], "vocab": V, "n_prompt": P, "greedy": [...]}
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
if (args.length < 4 || args.length > 5)
  fail("usage: node logits.mjs MODEL.gguf TOKENS POSITIONS OUT.bin [N]");
const [modelPath, tokensFile, positionsSpec, outPath] = args;
const nGreedy = args.length === 5 ? Number(args[4]) : 0;
if (!Number.isInteger(nGreedy) || nGreedy < 0) fail(`bad greedy length ${args[4]}`);
if (!fs.existsSync(modelPath)) fail(`model file ${modelPath} not found`);
const tokens = parseTokens(tokensFile);
const positions = parsePositions(positionsSpec, tokens.length);

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
    maxThreads: 2,
    // HERD_LLAMA_LOG=warn|info|debug shows llama.cpp's own loading messages.
    logLevel: LlamaLogLevel[process.env.HERD_LLAMA_LOG ?? "error"] ?? LlamaLogLevel.error,
  });
  const model = await llama.loadModel({ modelPath: path.resolve(modelPath), gpuLayers: 0 });
  // The vocabulary size is token_embd's row count (ne = {n_embd, n_vocab}).
  const embd = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight");
  if (!embd) fail(`${modelPath}: no token_embd.weight tensor`);
  const vocab = Number(embd.dimensions[1]);
  for (const t of tokens) if (t >= vocab) fail(`token id ${t} is outside the vocabulary (${vocab})`);
  const context = await model.createContext({
    contextSize: tokens.length + nGreedy + 1,
    threads: 2,
    flashAttention: false,
    // F32 cache: llama.cpp's default F16 cache rounds K/V, which herd's F32 path does not.
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
  });
  const sequence = context.getSequence();
  const want = new Set(positions);
  const last = tokens.length - 1;
  const greedyLogits = { logits: true, options: { temperature: 0 } };
  const input = tokens.map((t, i) =>
    want.has(i) || (i === last && nGreedy > 0) ? [t, { generateNext: greedyLogits }] : t);
  const results = await sequence.controlledEvaluate(input);

  const rows = new Float32Array(positions.length * vocab);
  positions.forEach((p, k) => rows.set(denseRow(results[p]?.next?.logits, vocab, `position ${p}`), k * vocab));

  const greedy = [];
  if (nGreedy > 0) {
    let row = denseRow(results[last]?.next?.logits, vocab, `position ${last}`);
    for (;;) {
      greedy.push(argmax(row));
      if (greedy.length === nGreedy) break;
      const step = await sequence.controlledEvaluate([[greedy.at(-1), { generateNext: greedyLogits }]]);
      row = denseRow(step[0]?.next?.logits, vocab, `greedy step ${greedy.length}`);
    }
  }

  fs.writeFileSync(outPath, Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength));
  const meta = { positions, vocab, n_prompt: tokens.length, greedy };
  fs.writeFileSync(`${outPath}.json`, JSON.stringify(meta) + "\n");
} catch (e) {
  fail(e?.stack ?? String(e));
}
process.exit(0);
