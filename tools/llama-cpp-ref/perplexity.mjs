#!/usr/bin/env node
// Perplexity from llama.cpp's logits (the pinned node-llama-cpp prebuilt), scored exactly as
// llama-perplexity and `herd perplexity` score it: the tokens (BOS first) are cut into windows of
// CTX, the tail that does not fill one is dropped, each window runs from an empty cache with its
// first token replaced by BOS, and only positions CTX/2 .. CTX-2 are scored (each predicts the
// token after it). With --kl-base, the run is also compared with the log-probabilities that
// `herd perplexity --save-base` wrote for the same tokens and CTX: mean KL(base ‖ this), top-1
// agreement and Δp, the measures `herd perplexity --kl-base` prints, and the largest |Δ log p|
// over the whole vocabulary at each position (its maximum, 90th and 99th percentiles over positions:
// the logits' difference with the normalisation's shift removed).
//
//   node perplexity.mjs MODEL.gguf TOKENS CTX BOS [--kl-base FILE]
//
// Prints one JSON object: {"ppl", "tokens", "windows", "ctx"[, "kl", "top1", "dp", "rms_dp",
// "max_dlp", "p90_dlp", "p99_dlp"]}.
import fs from "node:fs";
import { denseRow, failWith, openModel, parseTokens, threadCount } from "./ref_model.mjs";

const fail = failWith("perplexity.mjs");
const args = process.argv.slice(2);
const kIdx = args.indexOf("--kl-base");
const klBase = kIdx >= 0 ? args.splice(kIdx, 2)[1] : null;
if (args.length !== 4 || (kIdx >= 0 && !klBase))
  fail("usage: node perplexity.mjs MODEL.gguf TOKENS CTX BOS [--kl-base FILE]");
const [modelPath, tokensFile, ctxArg, bosArg] = args;
const ctx = Number(ctxArg), bos = Number(bosArg);
if (!Number.isInteger(ctx) || ctx < 4) fail(`bad CTX ${ctxArg}`);
if (!Number.isInteger(bos) || bos < 0) fail(`bad BOS ${bosArg}`);
const tokens = parseTokens(tokensFile, fail);
const windows = Math.floor(tokens.length / ctx);
if (windows < 1) fail(`${tokens.length} tokens, fewer than one window of ${ctx}`);
const first = Math.floor(ctx / 2), scored = ctx - 1 - first;

// herd's base file: "HERDPPL1", then vocab, ctx, rows, token hash (int64 LE), then rows × vocab
// float32 log-probabilities.
function openBase(file, vocab) {
  const buf = fs.readFileSync(file);
  if (buf.length < 40 || buf.toString("latin1", 0, 8) !== "HERDPPL1") fail(`${file}: not a herd perplexity base`);
  const [v, c, rows] = [8, 16, 24].map((o) => Number(buf.readBigInt64LE(o)));
  if (v !== vocab || c !== ctx || rows !== windows * scored)
    fail(`${file}: saved for vocab ${v}, ctx ${c}, ${rows} rows; this run has ${vocab}, ${ctx}, ${windows * scored}`);
  if (buf.length !== 40 + rows * vocab * 4) fail(`${file}: ${buf.length} bytes, expected ${40 + rows * vocab * 4}`);
  return new Float32Array(buf.buffer.slice(buf.byteOffset + 40, buf.byteOffset + buf.length));
}

function logSoftmax(row) {
  let m = -Infinity;
  for (const x of row) m = Math.max(m, x);
  let s = 0;
  for (const x of row) s += Math.exp(x - m);
  const lse = m + Math.log(s);
  return Float64Array.from(row, (x) => x - lse);
}

const argmax = (r) => r.reduce((best, x, i) => (x > r[best] ? i : best), 0);

try {
  const { vocab, createContext } = await openModel(modelPath, threadCount(fail), fail);
  for (const t of tokens) if (t >= vocab) fail(`token id ${t} is outside the vocabulary (${vocab})`);
  const base = klBase ? openBase(klBase, vocab) : null;
  const context = await createContext(ctx + 1);
  const sequence = context.getSequence();
  let nll = 0, n = 0, kl = 0, top1 = 0, dp = 0, dp2 = 0;
  const dlp = [];
  for (let w = 0; w < windows; ++w) {
    const win = tokens.slice(w * ctx, (w + 1) * ctx);
    win[0] = bos;
    await sequence.clearHistory();
    const results = await sequence.controlledEvaluate(
      win.map((t, i) => (i >= first && i < ctx - 1 ? [t, { generateNext: { logits: true } }] : t)));
    for (let i = first; i < ctx - 1; ++i) {
      const lp = logSoftmax(denseRow(results[i]?.next?.logits, vocab, `window ${w} position ${i}`, fail));
      const next = win[i + 1];
      nll -= lp[next];
      if (base) {
        const b = base.subarray(n * vocab, (n + 1) * vocab);
        let k = 0, m = 0;
        for (let t = 0; t < vocab; ++t) {
          k += Math.exp(b[t]) * (b[t] - lp[t]);
          m = Math.max(m, Math.abs(b[t] - lp[t]));
        }
        dlp.push(m === m ? m : Infinity);
        kl += Math.max(k, 0);
        if (argmax(lp) === argmax(b)) ++top1;
        const d = Math.exp(lp[next]) - Math.exp(b[next]);
        dp += d;
        dp2 += d * d;
      }
      ++n;
    }
  }
  const out = { ppl: Math.exp(nll / n), tokens: n, windows, ctx };
  if (base) {
    dlp.sort((a, b) => a - b);
    Object.assign(out, { kl: kl / n, top1: top1 / n, dp: dp / n, rms_dp: Math.sqrt(dp2 / n),
                         max_dlp: dlp[dlp.length - 1], p90_dlp: dlp[Math.floor(dlp.length * 0.9)],
                         p99_dlp: dlp[Math.floor(dlp.length * 0.99)] });
  }
  console.log(JSON.stringify(out));
} catch (e) {
  fail(e?.stack ?? String(e));
}
process.exit(0);
