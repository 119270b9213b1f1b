#!/usr/bin/env node
// herd reading a GGUF vs llama.cpp reading the same GGUF (CTest label "conformance",
// tests/integration/conformance_gguf.cmake). Unlike conformance.mjs, herd loads the .gguf file
// itself (`herd logits -m MODEL.gguf`): its GGUF import, not its safetensors path, is tested.
//
//   node conformance_gguf.mjs --herd BUILD/herd --work DIR --type TYPE [--quantize BIN]
//
// TYPE: f32 | bf16 (written by `herd export-gguf`) or q8_0 | q4_0 | q4_k_m | q6_k (the F32
// export requantized by llama.cpp's llama-quantize, --quantize or the one
// bench/build_llama_cpp.sh built for this machine's CPU). The model is `herd synth --preset small` with 4 layers and a
// 4096-token vocabulary: every matrix row is a multiple of 256, so llama-quantize applies the
// K-quants everywhere instead of falling back to Q5_0 / Q5_1 / Q8_0 for short rows.
// Checks, per compared position (every position of three 64-token prompts):
//   - max |Δlogit| ≤ CRITERIA[TYPE].max and its 90th percentile over positions ≤ .p90,
//   - top-1 identical on ≥ CRITERIA[TYPE].top1 of positions (the issue's 99.5%; 100% at f32),
//   - the compared logits have std ≈ 2 (synthetic weights scaled so: a test on flat logits
//     would prove little).
// herd runs with an f32 KV cache (llama.cpp's side uses one, logits.mjs), so only the weight
// format and the kernels differ; the block types on herd's GGUF kernels (--precision auto).
// Any failure exits 1; a missing reference fails, never skips.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { argmax, readRows, stddev } from "./ref_model.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

// Per type, on logits of std ≈ 2 (measured values: BENCHMARKS.md, "GGUF import").
//  f32:  both sides read the same f32 numbers, only summation order differs: the safetensors
//        conformance tolerance (1e-4) at every position, top-1 everywhere.
//  bf16: both round every matmul input to bf16. Their f32 parts differ by summation order
//        (~1e-6), and where a value sits near a bf16 rounding boundary that becomes a 1-ulp
//        (2^-8) difference which the next layers carry: median |Δ| 0.02, 90th percentile 0.06
//        measured. Where the top-1 router choice of a token is a near tie, the two engines then
//        pick different experts and the logits of that position move by a whole expert's
//        contribution (|Δ| ≈ 2, 5 of 192 positions measured on this random-weight model, whose
//        router logits are far closer than a trained model's). So p90 is the real bound (0.1),
//        max only bounds a routing flip (4), and top-1 is set at what such flips allow (97%,
//        below the issue's 99.5%: see the report).
//  q8_0 / q4_0 / q4_k_m / q6_k / q3_k_m / q2_k: herd's fast path (--precision auto) quantizes
//        activations to ggml's Q8_0 / Q8_K blocks bit for bit (gguf_ggml_conformance) and the
//        integer block dots are exact, so positions agree to ~1e-6 until one activation lands
//        within f32 rounding (summation order, exp / silu) of a rounding boundary of its block:
//        one code moves by 1, and the logits of that and, through the KV cache, later positions
//        move by 0.03-0.13 (measured: max 0.09 / 0.09 / 0.10 / 0.13 / 0.09 / 0.11, p90 0.071 /
//        0.068 / 0.080 / 0.086 / 0.071 / 0.080 for q8_0 / q4_0 / q4_k_m / q6_k / q3_k_m / q2_k).
//        A routing flip is |Δ| ≈ 2, so max 0.3 catches it everywhere but at `flips` positions
//        (at most 2 of 192, each still ≤ 4, bf16's bound): on AVX-512 machines none was seen, but
//        an AVX2-only machine (Zen 1) runs llama.cpp's AVX2 silu / exp / norm code, whose f32
//        rounding differs, and there one q8_0 position flipped (|Δ| 1.99 at one position; the
//        other 191 ≤ 0.085). Top-1 then differs wherever llama.cpp's own margin is below 2·|Δ|
//        (always so for a disagreement, given the |Δ| bound): 1-2 of 192 positions measured
//        (98.96-99.48%), all with margins 0.005-0.07, on this random-weight model whose 4096
//        logits hold near ties; the issue's 99.5% asks 192 of 192, which these near ties do not
//        allow: the test holds top-1 at 98% (at most 3 of 192, each also bounded by the max |Δ|
//        above). The 99.5% is held on the trained model, whose predictions have margins
//        (tests/integration/conformance_gguf_trained.sh: 99.80-99.96% over 7,000 positions).
const FLIP_MAX = 4;  // bf16's max: a whole expert's contribution at a near-tie router choice
const CRITERIA = {
  f32: { max: 1e-4, p90: 1e-4, top1: 1 },
  bf16: { max: FLIP_MAX, p90: 0.1, top1: 0.97 },
  q8_0: { max: 0.3, p90: 0.15, top1: 0.98, flips: 2 },
  q4_0: { max: 0.3, p90: 0.15, top1: 0.98, flips: 2 },
  q4_k_m: { max: 0.3, p90: 0.15, top1: 0.98, flips: 2 },
  q6_k: { max: 0.3, p90: 0.15, top1: 0.98, flips: 2 },
  q3_k_m: { max: 0.3, p90: 0.15, top1: 0.98, flips: 2 },
  q2_k: { max: 0.3, p90: 0.15, top1: 0.98, flips: 2 },
  iq4_xs: { max: 0.3, p90: 0.15, top1: 0.98, flips: 2 },
  iq4_nl: { max: 0.3, p90: 0.15, top1: 0.98, flips: 2 },
};
const QUANT_NAME = {
  q8_0: "Q8_0", q4_0: "Q4_0", q4_k_m: "Q4_K_M", q6_k: "Q6_K", q3_k_m: "Q3_K_M", q2_k: "Q2_K",
  iq4_xs: "IQ4_XS", iq4_nl: "IQ4_NL",
};
const STD_RANGE = [1.6, 2.4];
const PROMPTS = [[64, 4242], [64, 1], [64, 77]];

function parseArgs(argv) {
  const o = {
    quantize: "",
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i], v = argv[i + 1];
    if (a === "--herd") o.herd = v, ++i;
    else if (a === "--work") o.work = v, ++i;
    else if (a === "--type") o.type = v, ++i;
    else if (a === "--quantize") o.quantize = v, ++i;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.herd || !o.work || !(o.type in CRITERIA))
    throw new Error(`usage: conformance_gguf.mjs --herd BIN --work DIR --type ${Object.keys(CRITERIA).join("|")} [--quantize BIN]`);
  if (!o.quantize) {  // the build for this machine's CPU (bench/build_llama_cpp.sh --bin-dir)
    const script = path.join(here, "../../bench/build_llama_cpp.sh");
    o.quantize = path.join(execFileSync("bash", [script, "--bin-dir"], { encoding: "utf8" }).trim(),
                           "llama-quantize");
  }
  return o;
}

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  } catch (e) {
    throw new Error(`${path.basename(cmd)} ${args.join(" ")} failed (exit ${e.status}):\n${e.stderr}${e.stdout}`);
  }
}

function randomIds(length, seed, bos, vocab) {  // as conformance.mjs: BOS, last id, an LCG
  const out = [bos, vocab - 1];
  let s = seed >>> 0;
  while (out.length < length) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(Math.floor(((s >>> 8) / 16777216) * vocab));
  }
  return out;
}


const opt = parseArgs(process.argv.slice(2));
const failures = [];
const dir = path.join(opt.work, opt.type);
try {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const model = path.join(dir, "model");
  run(opt.herd, ["synth", "--preset", "small", "--layers", "4", "--vocab", "4096", "--text-only",
                 "--shards", "1", "-o", model]);
  const exportType = opt.type === "bf16" ? "bf16" : "f32";
  const exported = path.join(dir, `model-${exportType}.gguf`);
  run(opt.herd, ["export-gguf", "-m", model, "-o", exported, "--dtype", exportType, "--strict"]);
  let gguf = exported;
  if (QUANT_NAME[opt.type]) {
    if (!fs.existsSync(opt.quantize))
      throw new Error(`llama-quantize not found at ${opt.quantize} (run bench/build_llama_cpp.sh or pass --quantize)`);
    gguf = path.join(dir, `model-${opt.type}.gguf`);
    run(opt.quantize, [exported, gguf, QUANT_NAME[opt.type], "1"]);
  }
  console.log(`${opt.type}: ${path.basename(gguf)} ${(fs.statSync(gguf).size / 1048576).toFixed(1)} MiB`);
  console.log(run(opt.herd, ["info", "-m", gguf]).split("\n").filter((l) => l.startsWith("gguf:")).join("\n"));

  const cfg = JSON.parse(fs.readFileSync(path.join(model, "config.json"), "utf8"));
  const text = cfg.text_config ?? cfg;
  const bos = Array.isArray(text.bos_token_id) ? text.bos_token_id[0] : text.bos_token_id;
  const prompts = PROMPTS.map(([n, seed], k) => {
    const base = path.join(dir, `p${k}`);
    fs.writeFileSync(`${base}.tokens.txt`, randomIds(n, seed, bos, text.vocab_size).join(","));
    return base;
  });
  run(process.execPath, [path.join(here, "logits.mjs"), gguf,
                         ...prompts.flatMap((b) => [`${b}.tokens.txt`, "all", `${b}.llama.bin`, "0"])]);
  let maxDelta = 0, same = 0, total = 0;
  const stds = [], deltas = [];
  for (const base of prompts) {
    // The block types run on herd's GGUF kernels (--precision auto; `herd logits` defaults to the
    // f32 reference, which dequantizes the weights and keeps f32 activations: not what llama.cpp
    // computes). f32 / bf16 keep the reference, as their criteria were measured on it.
    const precision = QUANT_NAME[opt.type] ? "auto" : "f32";
    run(opt.herd, ["logits", "-m", gguf, "--tokens-file", `${base}.tokens.txt`, "--all", "--kv-type", "f32",
                   "--precision", precision,
                   "-o", `${base}.herd.bin`, "-t", "2"]);
    const a = readRows(`${base}.llama.bin`, text.vocab_size), b = readRows(`${base}.herd.bin`, text.vocab_size);
    if (a.length !== b.length) failures.push(`${base}: row count llama.cpp ${a.length}, herd ${b.length}`);
    for (let k = 0; k < Math.min(a.length, b.length); ++k) {
      let d = 0;
      for (let i = 0; i < a[k].length; ++i) d = Math.max(d, Math.abs(a[k][i] - b[k][i]));
      if (!(d === d)) d = Infinity;
      maxDelta = Math.max(maxDelta, d);
      deltas.push(d);
      same += argmax(a[k]) === argmax(b[k]);
      ++total;
      stds.push(stddev(a[k]));
    }
  }
  const agree = same / total;
  const meanStd = stds.reduce((x, y) => x + y, 0) / stds.length;
  const c = CRITERIA[opt.type];
  deltas.sort((x, y) => x - y);
  const p50 = deltas[Math.floor(deltas.length * 0.5)], p90 = deltas[Math.floor(deltas.length * 0.9)];
  // Positions past max: routing flips, allowed at `flips` positions as long as each stays ≤ FLIP_MAX.
  const over = deltas.filter((d) => !(d <= c.max));
  if (over.length > (c.flips ?? 0) || !(maxDelta <= Math.max(c.max, FLIP_MAX)))
    failures.push(`max |Δlogit| ${maxDelta} > ${c.max} at ${over.length} positions ` +
                  `(routing flips allowed: ${c.flips ?? 0}, each ≤ ${FLIP_MAX})`);
  if (!(p90 <= c.p90)) failures.push(`90th percentile |Δlogit| ${p90} > ${c.p90}`);
  if (!(agree >= c.top1)) failures.push(`top-1 agreement ${(100 * agree).toFixed(2)}% < ${100 * c.top1}%`);
  if (!(meanStd >= STD_RANGE[0] && meanStd <= STD_RANGE[1]))
    failures.push(`logit std ${meanStd.toFixed(3)} outside [${STD_RANGE}]`);
  console.log(`${failures.length ? "FAIL" : "ok  "} ${opt.type}: ${total} positions, max |Δlogit| ` +
              `${maxDelta.toExponential(2)} (≤ ${c.max}${over.length ? `; ${over.length} routing flip(s)` : ""}), median ${p50.toExponential(2)}, ` +
              `p90 ${p90.toExponential(2)} (≤ ${c.p90}), top-1 ${same}/${total} ` +
              `(${(100 * agree).toFixed(2)}%), std ${meanStd.toFixed(2)}`);
} catch (e) {
  failures.push(e.message);
}
for (const f of failures) console.log(`     ${f}`);
// A passing type's files (models, GGUFs, logits: ~50 MB) go, so a full `make test` stays small on
// disk; a failing one's stay for a look.
if (failures.length) console.log(`     files kept in ${dir}`);
else fs.rmSync(dir, { recursive: true, force: true });
process.exit(failures.length ? 1 : 0);
