// Load generator for the BENCHMARKS.md serving figures: C concurrent streaming clients, each
// sending R chat requests back to back (different prompts and seeds), against a running
// `herd serve`. Prints aggregate decode tokens/s (all generated tokens over the wall time of the
// run) and time to first token (median and p90 over requests).
//
// usage: node load.mjs BASE_URL CONCURRENCY REQUESTS_PER_CLIENT MAX_TOKENS [API_KEY]
//   e.g. node load.mjs http://127.0.0.1:8080 16 2 64
import OpenAI from "openai";

const [base, c = "1", r = "2", maxTokens = "64", key = "none"] = process.argv.slice(2);
const C = Number(c), R = Number(r), N = Number(maxTokens);
const client = new OpenAI({ apiKey: key, baseURL: `${base}/v1`, maxRetries: 0 });
const model = (await client.models.list()).data[0].id;

const ttfts = [];
let tokens = 0;
async function one(i, j) {
  const t0 = performance.now();
  let first = 0;
  const s = await client.chat.completions.create({
    model, stream: true, stream_options: { include_usage: true }, max_tokens: N,
    seed: 1000 * i + j, temperature: 0.8, logprobs: true,  // a chunk for every token
    messages: [{ role: "user", content: `Client ${i}, request ${j}: tell me a story.` }],
  });
  for await (const ch of s) {
    if (!first && ch.choices.some((x) => x.logprobs)) first = performance.now();
    if (ch.usage) tokens += ch.usage.completion_tokens;
  }
  ttfts.push((first || performance.now()) - t0);
}

const t0 = performance.now();
await Promise.all(Array.from({ length: C }, async (_, i) => {
  for (let j = 0; j < R; ++j) await one(i, j);
}));
const wall = (performance.now() - t0) / 1000;
ttfts.sort((a, b) => a - b);
const q = (p) => ttfts[Math.min(ttfts.length - 1, Math.floor(p * ttfts.length))];
console.log(JSON.stringify({ concurrency: C, requests: C * R, tokens, wall_s: +wall.toFixed(2),
  decode_tok_s: +(tokens / wall).toFixed(1), ttft_ms_p50: +q(0.5).toFixed(0),
  ttft_ms_p90: +q(0.9).toFixed(0) }));
