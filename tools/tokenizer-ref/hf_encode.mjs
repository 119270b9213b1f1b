// Independent reference for herd's tokenizer.json support: @huggingface/tokenizers (pure JS)
// loads a tokenizer.json and encodes a corpus.
//
//   node hf_encode.mjs --json tokenizer.json --in corpus.jsonl --out ids.jsonl [--time]
//
// HF always recognises added tokens in the text, so compare with `herd tokenize --special`.
import fs from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const tok = new Tokenizer(JSON.parse(fs.readFileSync(opt("--json"), "utf8")), {});
const texts = fs.readFileSync(opt("--in"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const t0 = process.hrtime.bigint();
const out = texts.map((t) => tok.encode(t, { add_special_tokens: false }).ids);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
fs.writeFileSync(opt("--out"), out.map((ids) => JSON.stringify(ids)).join("\n") + "\n");
if (args.includes("--time")) {
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
  console.log(JSON.stringify({ strings: texts.length, bytes, seconds: secs, mb_per_s: bytes / 1e6 / secs }));
}
