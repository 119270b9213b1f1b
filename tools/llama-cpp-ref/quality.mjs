#!/usr/bin/env node
// Quality of several logit dumps against one reference, the measures of `herd quality`:
// top-1 agreement, mean KL(reference ‖ candidate) and the reference's median top-1/top-2 margin.
// Used by bench/quality_vs_llama_cpp.sh to put herd's int8 / int4 next to llama.cpp's Q8_0 /
// Q4_0 on the same weights and tokens.
//
//   node quality.mjs VOCAB REF.bin NAME=FILE.bin [NAME=FILE.bin]...
//
// Files hold little-endian float32 rows of VOCAB logits (herd logits --all, logits.mjs "all").
// Prints one JSON object per candidate; exits 2 on unreadable or mismatched files.
import fs from "node:fs";

function fail(message) {
  process.stderr.write(`quality.mjs: error: ${message}\n`);
  process.exit(2);
}

function load(file, vocab) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
  }
  if (buf.length % (4 * vocab) !== 0)
    fail(`${file}: ${buf.length} bytes is not a whole number of ${vocab}-logit rows`);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
}

// log Σ exp(row) in f64, and the row's argmax (ties to the lowest id).
function summary(row) {
  let mx = -Infinity, arg = 0;
  for (let i = 0; i < row.length; ++i)
    if (row[i] > mx) mx = row[i], arg = i;
  let s = 0;
  for (let i = 0; i < row.length; ++i) s += Math.exp(row[i] - mx);
  return { lse: mx + Math.log(s), arg, mx };
}

const [vocabArg, refFile, ...cands] = process.argv.slice(2);
const vocab = Number(vocabArg);
if (!Number.isInteger(vocab) || vocab <= 0 || !refFile || cands.length === 0)
  fail("usage: node quality.mjs VOCAB REF.bin NAME=FILE.bin [NAME=FILE.bin]...");
const ref = load(refFile, vocab);
const rows = ref.length / vocab;
const refRows = [];
const margins = [];
for (let r = 0; r < rows; ++r) {
  const row = ref.subarray(r * vocab, (r + 1) * vocab);
  const s = summary(row);
  let second = -Infinity;
  for (let i = 0; i < vocab; ++i)
    if (i !== s.arg && row[i] > second) second = row[i];
  margins.push(s.mx - second);
  refRows.push(s);
}
margins.sort((a, b) => a - b);
const median = margins[Math.floor(rows / 2)];

for (const c of cands) {
  const eq = c.indexOf("=");
  if (eq <= 0) fail(`candidate "${c}" is not NAME=FILE`);
  const name = c.slice(0, eq), file = c.slice(eq + 1);
  const cand = load(file, vocab);
  if (cand.length !== ref.length) fail(`${file} has ${cand.length / vocab} rows, reference ${rows}`);
  let agree = 0, kl = 0;
  for (let r = 0; r < rows; ++r) {
    const p = ref.subarray(r * vocab, (r + 1) * vocab);
    const q = cand.subarray(r * vocab, (r + 1) * vocab);
    const sp = refRows[r], sq = summary(q);
    if (sp.arg === sq.arg) ++agree;
    let k = 0;
    for (let i = 0; i < vocab; ++i) {
      const lp = p[i] - sp.lse, lq = q[i] - sq.lse;
      k += Math.exp(lp) * (lp - lq);
    }
    kl += k;
  }
  console.log(JSON.stringify({
    name, positions: rows, top1_agreement: agree / rows, mean_kl: kl / rows,
    median_margin: median,
  }));
}
