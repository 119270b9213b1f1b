// Independent reference encoder for herd's conformance test: js-tiktoken built from Meta's
// tokenizer.model, the Llama 4 split pattern and the 2048 special tokens.
//
//   node encode.mjs --model tokenizer.model --specials special_tokens.tsv \
//        --in corpus.jsonl --out ids.jsonl [--special] [--time]
//
// Input: one JSON string per line. Output: one JSON array of ids per line.
// The pattern is spec §4.1's, spelled for JavaScript RegExp: JS has no inline (?i:...), so the
// contractions are spelled case by case (with U+017F 'ſ', which Rust's case-insensitive 's'
// also matches), and \s / \S become explicit Unicode White_Space classes, because JS's \s
// differs from Rust's (tiktoken's) \s: JS adds U+FEFF and leaves out U+0085.
import fs from "node:fs";
import { Tiktoken } from "js-tiktoken/lite";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const flag = (name) => args.includes(name);

const WS = "\\t\\n\\v\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
const C = "(?:'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?";
export const PATTERN = [
  `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+${C}`,
  `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*${C}`,
  `\\p{N}{1,3}`,
  ` ?[^${WS}\\p{L}\\p{N}]+[\\r\\n/]*`,
  `[${WS}]*[\\r\\n]+`,
  `[${WS}]+(?![^${WS}])`,
  `[${WS}]+`,
].join("|");

export function buildEncoder(modelPath, specialsPath) {
  const lines = fs.readFileSync(modelPath, "utf8").split("\n").filter(Boolean);
  lines.forEach((line, i) => {
    if (Number(line.split(" ")[1]) !== i) throw new Error(`${modelPath}: rank ${i} out of order`);
  });
  // js-tiktoken's compressed format: "<ignored> <first rank> <base64 token> ...".
  const bpe_ranks = "! 0 " + lines.map((l) => l.split(" ")[0]).join(" ");
  const special_tokens = {};
  for (const line of fs.readFileSync(specialsPath, "utf8").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [id, name] = line.split("\t");
    special_tokens[name] = Number(id);
  }
  return new Tiktoken({ pat_str: PATTERN, special_tokens, bpe_ranks });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const enc = buildEncoder(opt("--model"), opt("--specials"));
  const special = flag("--special");
  const texts = fs.readFileSync(opt("--in"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const t0 = process.hrtime.bigint();
  const out = texts.map((t) => (special ? enc.encode(t, "all") : enc.encode(t, [], [])));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (opt("--out")) fs.writeFileSync(opt("--out"), out.map((ids) => JSON.stringify(ids)).join("\n") + "\n");
  if (flag("--time")) {
    const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
    console.log(JSON.stringify({ strings: texts.length, bytes, seconds: secs, mb_per_s: bytes / 1e6 / secs }));
  }
}
