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
import { denseRow as dense, failWith, openModel, parseTokens as readTokens, threadCount } from "./ref_model.mjs";

const fail = failWith("logits.mjs");
const parseTokens = (file) => readTokens(file, fail);
const denseRow = (map, vocab, where) => dense(map, vocab, where, fail);

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
const threads = threadCount(fail);
const jobs = groups.map(([tokensFile, positionsSpec, outPath, n]) => {
  const nGreedy = Number(n);
  if (!Number.isInteger(nGreedy) || nGreedy < 0) fail(`bad greedy length ${n}`);
  const tokens = parseTokens(tokensFile);
  return { tokens, positions: parsePositions(positionsSpec, tokens.length), outPath, nGreedy };
});

try {
  const { vocab, createContext } = await openModel(modelPath, threads, fail);
  for (const { tokens } of jobs)
    for (const t of tokens) if (t >= vocab) fail(`token id ${t} is outside the vocabulary (${vocab})`);
  const context = await createContext(Math.max(...jobs.map((j) => j.tokens.length + j.nGreedy + 1)));
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
