#!/usr/bin/env node
// herd vs llama.cpp conformance (CTest label "conformance", tests/integration/conformance.cmake).
//
//   node conformance.mjs --herd BUILD/herd --work DIR [--case NAME]...
//
// For each case: `herd synth` a random-weight model (presets chosen so llama.cpp's hard-coded
// llama4 facts hold: chunk 8192, NoPE every 4th layer, temperature tuning 8192 / 0.1, QK-norm iff
// experts != 128), `herd export-gguf` it as F32 (exact for the BF16 weights), then compare
// `herd logits` with logits.mjs (llama.cpp) on the same token ids:
//   - top-1 identical at every compared position,
//   - max |Δlogit| ≤ 1e-4 up to position 8192, ≤ 1e-3 after,
//   - greedy continuation (argmax, ties to the lowest id) identical for `greedy` tokens.
// Any failure, including node-llama-cpp not loading, exits 1: this test never skips.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

const CASES = {
  // Scout in miniature: every layer MoE (4 experts: QK-norm on), llama3 rope scaling.
  tiny: { preset: "tiny", length: 48, positions: "all", greedy: 32 },
  // Maverick in miniature: 128 experts (QK-norm off), dense layers, no rope scaling.
  interleaved: { preset: "tiny-interleaved", length: 48, positions: "all", greedy: 32 },
  // Past the first 8192-token chunk: chunked mask and NoPE temperature tuning both bite.
  long: { preset: "tiny", length: 8300, positions: "0,1,100,4096,8190,8191,8192,8193,8299", greedy: 0 },
};

function parseArgs(argv) {
  const o = { cases: [] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i], v = argv[i + 1];
    if (a === "--herd") o.herd = v, ++i;
    else if (a === "--work") o.work = v, ++i;
    else if (a === "--case") o.cases.push(v), ++i;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.herd || !o.work) throw new Error("usage: conformance.mjs --herd BIN --work DIR [--case NAME]...");
  if (o.cases.length === 0) o.cases = Object.keys(CASES);
  for (const c of o.cases) if (!CASES[c]) throw new Error(`unknown case ${c}`);
  return o;
}

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    throw new Error(`${path.basename(cmd)} ${args.join(" ")} failed (exit ${e.status}):\n${e.stderr}${e.stdout}`);
  }
}

// Deterministic prompt: BOS, then byte tokens from a fixed LCG (the fallback vocabulary).
function prompt(length, bos) {
  const out = [bos];
  let s = 12345;
  while (out.length < length) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out.push((s >> 8) % 256);
  }
  return out;
}

function readRows(file, vocab) {
  const buf = fs.readFileSync(file);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const rows = [];
  for (let i = 0; i < all.length; i += vocab) rows.push(all.subarray(i, i + vocab));
  return rows;
}

function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; ++i) if (row[i] > row[best]) best = i;
  return best;
}

function runCase(name, c, opt) {
  const dir = path.join(opt.work, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const model = path.join(dir, "model"), gguf = path.join(dir, "model.gguf");
  run(opt.herd, ["synth", "--preset", c.preset, "-o", model, "--text-only"]);
  // --strict: the export must be one llama.cpp computes exactly like herd.
  run(opt.herd, ["export-gguf", "-m", model, "-o", gguf, "--dtype", "f32", "--strict"]);
  const bos = JSON.parse(fs.readFileSync(path.join(model, "config.json"), "utf8")).bos_token_id;
  const tokens = prompt(c.length, Array.isArray(bos) ? bos[0] : bos);
  const tokFile = path.join(dir, "tokens.txt");
  fs.writeFileSync(tokFile, tokens.join(","));

  const ref = path.join(dir, "llama.bin");
  run(process.execPath, [path.join(here, "logits.mjs"), gguf, tokFile, c.positions, ref, String(c.greedy)]);
  const meta = JSON.parse(fs.readFileSync(`${ref}.json`, "utf8"));
  const mine = path.join(dir, "herd.bin");
  const posArgs = c.positions === "all" ? ["--all"] : ["--positions", meta.positions.join(",")];
  run(opt.herd, ["logits", "-m", model, "--tokens-file", tokFile, ...posArgs, "-o", mine, "-t", "2"]);

  const a = readRows(ref, meta.vocab), b = readRows(mine, meta.vocab);
  const failures = [];
  if (a.length !== b.length) failures.push(`row count: llama.cpp ${a.length}, herd ${b.length}`);
  let worst = 0;
  meta.positions.forEach((p, k) => {
    if (!b[k] || b[k].length !== meta.vocab) return;
    let d = 0;
    for (let i = 0; i < meta.vocab; ++i) d = Math.max(d, Math.abs(a[k][i] - b[k][i]));
    if (!(d === d)) d = Infinity;  // NaN anywhere fails
    worst = Math.max(worst, d);
    const tol = p <= 8192 ? 1e-4 : 1e-3;
    if (!(d <= tol)) failures.push(`position ${p}: max |Δlogit| ${d} > ${tol}`);
    if (argmax(a[k]) !== argmax(b[k]))
      failures.push(`position ${p}: top-1 llama.cpp ${argmax(a[k])}, herd ${argmax(b[k])}`);
  });

  // herd's greedy continuation, one `herd logits` call per step (the prompts are short).
  const greedy = [];
  const seq = [...tokens];
  for (let k = 0; k < c.greedy; ++k) {
    fs.writeFileSync(tokFile, seq.join(","));
    run(opt.herd, ["logits", "-m", model, "--tokens-file", tokFile, "--positions", "-1", "-o", mine, "-t", "2"]);
    const next = argmax(readRows(mine, meta.vocab)[0]);
    greedy.push(next);
    seq.push(next);
  }
  if (JSON.stringify(greedy) !== JSON.stringify(meta.greedy))
    failures.push(`greedy: llama.cpp ${JSON.stringify(meta.greedy)}, herd ${JSON.stringify(greedy)}`);
  console.log(`${failures.length ? "FAIL" : "ok  "} ${name}: ${meta.positions.length} positions, ` +
              `max |Δlogit| ${worst.toExponential(2)}, greedy ${greedy.length} tokens`);
  for (const f of failures) console.log(`     ${f}`);
  return failures.length === 0;
}

let passed = 0, failed = 0;
try {
  const opt = parseArgs(process.argv.slice(2));
  for (const name of opt.cases) {
    try {
      runCase(name, CASES[name], opt) ? ++passed : ++failed;
    } catch (e) {
      console.log(`FAIL ${name}: ${e.message}`);
      ++failed;
    }
  }
} catch (e) {
  console.log(`conformance: error: ${e.message}`);
  ++failed;
}
console.log(`conformance: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
