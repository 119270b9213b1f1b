#!/usr/bin/env node
// herd vs llama.cpp conformance (CTest label "conformance", tests/integration/conformance.cmake).
//
//   node conformance.mjs --herd BUILD/herd --work DIR [--tokenizer DIR] [--case NAME]...
//
// For each case: `herd synth` a random-weight model (presets chosen so llama.cpp's hard-coded
// llama4 facts hold: chunk 8192, NoPE every 4th layer, temperature tuning 8192 / 0.1, QK-norm iff
// experts != 128), `herd export-gguf` it as F32 (exact for the BF16 weights), then for each of
// the case's prompts compare `herd logits` with logits.mjs (llama.cpp) on the same token ids:
//   - top-1 identical at every compared position,
//   - max |Δlogit| ≤ 1e-4 before position 8192, ≤ 1e-3 from 8192 on,
//   - greedy continuation of 32 tokens (argmax, ties to the lowest id) identical; herd decodes
//     it with its KV cache (`herd logits --greedy`), llama.cpp with its own,
//   - the compared logits have std ≈ 2 (what the synthetic weights are scaled for: a test on
//     logits that are all ~0 or all huge would prove little),
//   - every routed expert of every MoE layer chosen at least once over the case's prompts
//     (`herd logits --expert-stats`, from the decoder's "expert" trace).
// Any failure, including node-llama-cpp missing or not loading, exits 1: this test never skips.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { argmax, readRows, stddev } from "./ref_model.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

const CHUNK = 8192;        // llama.cpp's llama4 attention chunk (and temperature-tuning floor)
const GREEDY = 32;
const LONG = 8400;
// 0, both sides of the chunk boundary, a NoPE-only stretch, the last position.
const LONG_POSITIONS = "0,1,100,4095,8190,8191,8192,8193,8300,-1";
const STD_RANGE = [1.6, 2.4];  // mean per-row std of the compared logits

// Prompts: {name, tokens: how to make the ids, positions}. Synthetic prompts are BOS then ids
// drawn over the whole vocabulary (special tokens and the last id included) from a fixed LCG.
const random = (length, seed) => ({ kind: "random", length, seed });
const SHORT = { name: "short", tokens: random(48, 12345), positions: "all" };
const LONG_PROMPT = { name: "long", tokens: random(LONG, 777), positions: LONG_POSITIONS };

// Text for the real-tokenizer case, tokenized by herd from the model directory (the copied
// tokenizer.model), special-token names recognised. Each stays ≤ 64 tokens.
const CHAT =
  "<|begin_of_text|><|header_start|>user<|header_end|>\n\n" +
  "What is the capital of France? Answer in one word.<|eot|>" +
  "<|header_start|>assistant<|header_end|>\n\n";
const MIXED =
  "<|begin_of_text|>def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n" +
  "# Größe, naïve café — 日本語のテキスト, Ελληνικά 🙂 1234567";

const CASES = {
  // Scout in miniature, sharded checkpoint: every layer MoE (4 experts: QK-norm on), llama3
  // rope scaling. The long prompt crosses the first 8192-token chunk: chunked mask, NoPE layers
  // and temperature tuning all bite.
  tiny: { preset: "tiny", shards: 2, prompts: [SHORT, LONG_PROMPT] },
  // Maverick in miniature, single-file checkpoint: 128 experts (QK-norm off), dense layers, no
  // rope scaling. The router's top-1 is mostly a function of the token, so reaching all 128
  // experts takes many distinct tokens: vocab 8192 (with the preset's 277, 10-16 experts per
  // layer are never chosen even over 8400 tokens); the long prompt gives the thousands.
  "tiny-interleaved": {
    preset: "tiny-interleaved", shards: 1, vocab: 8192, prompts: [SHORT, LONG_PROMPT],
  },
  // The real 202048-token vocabulary with Meta's tokenizer copied into the model directory.
  small: {
    preset: "small",
    shards: 1,
    tokenizer: true,
    prompts: [
      { name: "chat", tokens: { kind: "text", text: CHAT }, positions: "all" },
      { name: "mixed", tokens: { kind: "text", text: MIXED }, positions: "all" },
      { name: "random-ids", tokens: random(64, 4242), positions: "all" },
      { name: "random-ids-2", tokens: random(64, 1), positions: "all" },
    ],
  },
};

function parseArgs(argv) {
  const o = { cases: [], tokenizer: process.env.HERD_LLAMA4_TOKENIZER || "/work/shared/llama4" };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i], v = argv[i + 1];
    if (a === "--herd") o.herd = v, ++i;
    else if (a === "--work") o.work = v, ++i;
    else if (a === "--tokenizer") o.tokenizer = v, ++i;
    else if (a === "--case") o.cases.push(v), ++i;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.herd || !o.work)
    throw new Error("usage: conformance.mjs --herd BIN --work DIR [--tokenizer DIR] [--case NAME]...");
  if (o.cases.length === 0) o.cases = Object.keys(CASES);
  for (const c of o.cases) if (!CASES[c]) throw new Error(`unknown case ${c}`);
  return o;
}

function run(cmd, args, input) {
  try {
    return execFileSync(cmd, args, {
      encoding: "utf8",
      input,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    throw new Error(`${path.basename(cmd)} ${args.join(" ")} failed (exit ${e.status}):\n${e.stderr}${e.stdout}`);
  }
}

// The pinned reference must be installed: fail (never skip) with the fix in the message.
async function checkReference() {
  const pin = JSON.parse(fs.readFileSync(path.join(here, "package.json"), "utf8")).dependencies;
  for (const [name, version] of Object.entries(pin)) {
    const file = path.join(here, "node_modules", name, "package.json");
    if (!fs.existsSync(file))
      throw new Error(`${name} is not installed in ${here} (run tools/install-references.sh)`);
    const got = JSON.parse(fs.readFileSync(file, "utf8")).version;
    if (got !== version)
      throw new Error(`${name} ${got} is installed, ${version} is pinned (run tools/install-references.sh)`);
  }
  try {
    await import("node-llama-cpp");
  } catch (e) {
    throw new Error(`cannot load node-llama-cpp: ${e.message}`);
  }
}

// BOS, the last id, then ids spread over the whole vocabulary from a fixed LCG.
function randomIds(length, seed, bos, vocab) {
  const out = [bos, vocab - 1];
  let s = seed >>> 0;
  while (out.length < length) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;  // Numerical Recipes' 32-bit LCG
    out.push(Math.floor(((s >>> 8) / 16777216) * vocab));  // its high 24 bits
  }
  return out;
}

function makeTokens(spec, model, cfg) {
  const bos = Array.isArray(cfg.bos_token_id) ? cfg.bos_token_id[0] : cfg.bos_token_id;
  if (spec.kind === "random") return randomIds(spec.length, spec.seed, bos, cfg.vocab_size);
  const ids = JSON.parse(run(opt.herd, ["tokenize", "-m", model, "--special"], spec.text));
  if (ids.length > 64) throw new Error(`text prompt has ${ids.length} tokens, more than 64`);
  if (ids[0] !== bos) throw new Error(`text prompt does not start with BOS ${bos}: ${ids[0]}`);
  return ids;
}


const secs = (t0) => ((Date.now() - t0) / 1000).toFixed(1);

// One prompt, after logits.mjs has written llama.cpp's side: herd on the same ids, compared.
// Returns the failures and herd's expert counts.
function comparePrompt(model, prompt) {
  const { tokens, tokFile, ref, base } = prompt;
  const meta = JSON.parse(fs.readFileSync(`${ref}.json`, "utf8"));
  const t0 = Date.now();
  const mine = `${base}.herd.bin`, stats = `${base}.experts.json`;
  const posArgs = prompt.positions === "all" ? ["--all"] : ["--positions", meta.positions.join(",")];
  run(opt.herd, ["logits", "-m", model, "--tokens-file", tokFile, ...posArgs, "-o", mine, "-t", "2",
                 "--greedy", String(GREEDY), "--expert-stats", stats]);
  const tHerd = secs(t0);
  const herdMeta = JSON.parse(fs.readFileSync(`${mine}.json`, "utf8"));

  const a = readRows(ref, meta.vocab), b = readRows(mine, meta.vocab);
  const failures = [];
  if (a.length !== b.length) failures.push(`row count: llama.cpp ${a.length}, herd ${b.length}`);
  let before = 0, after = 0;
  const stds = [];
  meta.positions.forEach((p, k) => {
    if (!b[k] || b[k].length !== meta.vocab) return;
    let d = 0;
    for (let i = 0; i < meta.vocab; ++i) d = Math.max(d, Math.abs(a[k][i] - b[k][i]));
    if (!(d === d)) d = Infinity;  // NaN anywhere fails
    const tol = p < CHUNK ? 1e-4 : 1e-3;
    if (p < CHUNK) before = Math.max(before, d);
    else after = Math.max(after, d);
    if (!(d <= tol)) failures.push(`position ${p}: max |Δlogit| ${d} > ${tol}`);
    if (argmax(a[k]) !== argmax(b[k]))
      failures.push(`position ${p}: top-1 llama.cpp ${argmax(a[k])}, herd ${argmax(b[k])}`);
    stds.push(stddev(a[k]));
  });
  const meanStd = stds.reduce((x, y) => x + y, 0) / stds.length;
  if (!(meanStd >= STD_RANGE[0] && meanStd <= STD_RANGE[1]))
    failures.push(`logit std ${meanStd.toFixed(3)} outside [${STD_RANGE}] (synthetic weights mis-scaled?)`);
  const same = JSON.stringify(herdMeta.greedy) === JSON.stringify(meta.greedy);
  if (!same || meta.greedy.length !== GREEDY)
    failures.push(`greedy: llama.cpp ${JSON.stringify(meta.greedy)}, herd ${JSON.stringify(herdMeta.greedy)}`);

  const std = `std ${meanStd.toFixed(2)} [${Math.min(...stds).toFixed(2)}, ${Math.max(...stds).toFixed(2)}]`;
  const delta = `max |Δ| ${before.toExponential(2)}` +
                (meta.positions.some((p) => p >= CHUNK) ? ` (from ${CHUNK}: ${after.toExponential(2)})` : "");
  console.log(`  ${failures.length ? "FAIL" : "ok  "} ${prompt.name}: ${tokens.length} tokens, ` +
              `${meta.positions.length} positions, ${delta}, ${std}, ` +
              `greedy ${herdMeta.greedy.length} ${same ? "identical" : "DIFFER"}; herd ${tHerd}s`);
  for (const f of failures) console.log(`       ${f}`);
  return { failures, stats: JSON.parse(fs.readFileSync(stats, "utf8")) };
}

// Per MoE layer: how often each expert was chosen over all prompts; none may be 0, and every
// MoE layer of the config must have reported.
function expertCoverage(all, cfg) {
  const failures = [];
  const step = cfg.interleave_moe_layer_step ?? 1;
  const moeLayers = cfg.moe_layers ??
      [...Array(cfg.num_hidden_layers).keys()].filter((i) => (i + 1) % step === 0);
  const sum = new Map();
  let tokens = 0, experts = 0;
  for (const s of all) {
    tokens += s.tokens;
    experts = s.experts;
    for (const { layer, counts } of s.layers) {
      const acc = sum.get(layer) ?? new Array(counts.length).fill(0);
      counts.forEach((c, e) => (acc[e] += c));
      sum.set(layer, acc);
    }
  }
  const missing = moeLayers.filter((l) => !sum.has(l));
  if (missing.length) failures.push(`experts: MoE layer(s) ${missing.join(",")} reported no "expert" trace`);
  console.log(`  experts chosen over ${tokens} tokens (${experts} experts per MoE layer):`);
  for (const [layer, counts] of [...sum].sort((x, y) => x[0] - y[0])) {
    const never = counts.flatMap((c, e) => (c === 0 ? [e] : []));
    console.log(`    layer ${layer}: min ${Math.min(...counts)}, max ${Math.max(...counts)}` +
                `${never.length ? `, NEVER chosen: ${never.join(",")}` : ""}`);
    console.log(`      [${counts.join(" ")}]`);
    if (never.length) failures.push(`layer ${layer}: expert(s) ${never.join(",")} never chosen`);
    if (counts.length !== cfg.num_local_experts)
      failures.push(`layer ${layer}: ${counts.length} expert counts, config has ${cfg.num_local_experts}`);
  }
  return failures;
}

function runCase(name, c) {
  const t0 = Date.now();
  const dir = path.join(opt.work, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const model = path.join(dir, "model"), gguf = path.join(dir, "model.gguf");
  const synth = ["synth", "--preset", c.preset, "-o", model, "--text-only", "--shards", String(c.shards)];
  if (c.vocab) synth.push("--vocab", String(c.vocab));
  if (c.tokenizer) {
    if (!fs.existsSync(path.join(opt.tokenizer, "tokenizer.model")))
      throw new Error(`no tokenizer.model in ${opt.tokenizer} (--tokenizer DIR or HERD_LLAMA4_TOKENIZER)`);
    synth.push("--tokenizer", opt.tokenizer);
  }
  run(opt.herd, synth);
  const shardFiles = fs.readdirSync(model).filter((f) => f.endsWith(".safetensors"));
  const layout = shardFiles.length === 1 ? "single file" : `${shardFiles.length} shards`;
  // --strict: the export must be one llama.cpp computes exactly like herd.
  run(opt.herd, ["export-gguf", "-m", model, "-o", gguf, "--dtype", "f32", "--strict"]);
  const cfg = JSON.parse(fs.readFileSync(path.join(model, "config.json"), "utf8"));
  const text = cfg.text_config ?? cfg;
  console.log(`${name}: preset ${c.preset}, ${layout}, vocab ${text.vocab_size}` +
              `${c.tokenizer ? ", real tokenizer" : ""} (synth + export ${secs(t0)}s)`);

  // llama.cpp: every prompt in one process (one model load), then herd prompt by prompt.
  const prompts = c.prompts.map((p) => {
    const tokens = makeTokens(p.tokens, model, text);
    const base = path.join(dir, p.name);
    const tokFile = `${base}.tokens.txt`;
    fs.writeFileSync(tokFile, tokens.join(","));
    return { ...p, tokens, tokFile, base, ref: `${base}.llama.bin` };
  });
  const t1 = Date.now();
  run(process.execPath, [path.join(here, "logits.mjs"), gguf,
                         ...prompts.flatMap((p) => [p.tokFile, p.positions, p.ref, String(GREEDY)])]);
  console.log(`  llama.cpp: ${prompts.length} prompts in ${secs(t1)}s`);
  const failures = [], stats = [];
  for (const p of prompts) {
    try {
      const r = comparePrompt(model, p);
      failures.push(...r.failures.map((f) => `${p.name}: ${f}`));
      stats.push(r.stats);
    } catch (e) {
      console.log(`  FAIL ${p.name}: ${e.message}`);
      failures.push(`${p.name}: ${e.message.split("\n")[0]}`);
    }
  }
  failures.push(...expertCoverage(stats, text));
  console.log(`${failures.length ? "FAIL" : "ok  "} ${name} (${secs(t0)}s)`);
  for (const f of failures) console.log(`     ${f}`);
  // A passing case's files (model, GGUF, logits: up to a few hundred MB at the real vocabulary)
  // go, so a full `make test` stays small on disk; a failing one's stay for a look.
  if (failures.length) console.log(`     files kept in ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
  return failures.length === 0;
}

let opt;
let passed = 0, failed = 0;
try {
  opt = parseArgs(process.argv.slice(2));
  await checkReference();
  for (const name of opt.cases) {
    try {
      runCase(name, CASES[name]) ? ++passed : ++failed;
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
