// Compares token-id files line by line (and, optionally, decoded text with the corpus).
//   node compare.mjs LABEL CORPUS.jsonl EXPECTED.jsonl ACTUAL.jsonl [DECODED.jsonl]
// Exits 1 on the first mismatches (up to 5 shown), printing where the ids diverge.
import fs from "node:fs";

const [label, corpusPath, expPath, actPath, decPath] = process.argv.slice(2);
const lines = (p) => fs.readFileSync(p, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const corpus = lines(corpusPath), exp = lines(expPath), act = lines(actPath);
const dec = decPath ? lines(decPath) : null;
let bad = 0;
const report = (msg) => {
  if (++bad <= 5) console.log(`${label}: ${msg}`);
};
for (const [name, arr] of [["expected", exp], ["actual", act], ["decoded", dec]]) {
  if (arr && arr.length !== corpus.length) report(`${name} has ${arr.length} lines, corpus ${corpus.length}`);
}
for (let i = 0; i < corpus.length; ++i) {
  const e = exp[i] ?? [], a = act[i] ?? [];
  let k = 0;
  while (k < e.length && k < a.length && e[k] === a[k]) ++k;
  if (k !== e.length || k !== a.length)
    report(`string ${i} (${JSON.stringify(corpus[i].slice(0, 60))}...): ids differ at ${k}: ` +
           `expected ${JSON.stringify(e.slice(k, k + 5))}, got ${JSON.stringify(a.slice(k, k + 5))}`);
  if (dec && dec[i] !== corpus[i]) report(`string ${i}: decoding the ids does not give the input back`);
}
const bytes = corpus.reduce((n, s) => n + Buffer.byteLength(s, "utf8"), 0);
if (bad) {
  console.log(`${label}: ${bad} mismatches over ${corpus.length} strings`);
  process.exit(1);
}
console.log(`${label}: ${corpus.length} strings (${bytes} bytes) match exactly`);
