// Deterministic conformance corpus for the tokenizer (no downloads): hand-written seed text in
// many scripts, recombined with a fixed-seed PRNG into >= 2000 strings and >= 1 MB, with at
// least 100 KB in each required category. Every string is under 20 000 characters.
//
//   node make_corpus.mjs OUT.jsonl      (one JSON string per line; prints per-category sizes)
import fs from "node:fs";

// mulberry32: small, fast, and the same on every machine.
let state = 0x4c4c4134;  // "LLA4"
function rand() {
  state = (state + 0x6d2b79f5) | 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const cp = (c) => String.fromCodePoint(c);
const range = (lo, hi) => cp(lo + int(hi - lo + 1));
// First n code points (String.slice could cut a surrogate pair in half).
const head = (s, n) => [...s].slice(0, n).join("");

const ENGLISH = [
  "The quick brown fox jumps over the lazy dog.", "I'm sure they'll say it's fine, but we've seen otherwise.",
  "DON'T PANIC", "She said: \"Well, I'd rather not.\"", "Numbers like 3.14159 and 2,718 appear often.",
  "The committee's report—published in March—ran to 312 pages.", "What's the difference between a list and a tuple?",
  "E-mail me at someone@example.com or visit https://example.org/path?q=1&r=2.",
  "Mr. O'Neil's cat (aged 12) weighs 4.5 kg.", "They're WE'RE you'RE it'S ſ'S", "  indented text\tafter a tab",
  "Once upon a time, in a kingdom by the sea, there lived a tokenizer.", "Résumé, naïve café, coöperate, Zoë.",
];
const CJK = [
  "我们今天去公园散步，天气非常好。", "机器学习模型需要大量的数据进行训练。", "请问最近的地铁站在哪里？",
  "東京は日本の首都です。", "今日はいい天気ですね！散歩に行きましょう。", "カタカナとひらがなを混ぜて書きます。",
  "한국어 문장도 포함합니다. 안녕하세요, 만나서 반갑습니다!", "人工知能（じんこうちのう）の研究が進んでいる。",
  "「こんにちは」と彼は言った。", "中文、日本語、한국어：三种语言。", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３",
];
const RTL = [
  "مرحبا بالعالم، كيف حالك اليوم؟", "اللغة العربية جميلة جداً.", "قرأتُ الكِتَابَ فِي المَكْتَبَةِ.",
  "شلום עולם, מה שלומך?", "הספר נמצא על השולחן.", "בְּרֵאשִׁית בָּרָא אֱלֹהִים", "سلام دنیا، این یک آزمایش است.",
  "العدد ١٢٣٤٥ والعدد 678 في النص.", "Mixed עברית and English and العربية in one line.",
  "ישנם 3 ספרים ו-12 עטים.", "پاکستان میں اردو بولی جاتی ہے۔",
];
const OTHER = [
  "Привет, мир! Как дела?", "Γειά σου Κόσμε· τι κάνεις;", "नमस्ते दुनिया, आप कैसे हैं?", "สวัสดีชาวโลก ยินดีต้อนรับ",
  "Xin chào thế giới, bạn khỏe không?", "Ἐν ἀρχῇ ἦν ὁ λόγος", "Здравствуйте! Ёлка, щука, съесть.",
  "ᚠᚢᚦᚨᚱᚲ runes ᛗᛁᛞᚷᚢᚱᛞ", "ⲡⲓⲛⲟⲩⲧⲉ ⲛ̀ⲧⲉ", "ქართული ენა", "Հայերեն լեզու", "ශ්‍රී ලංකාව",
];
const EMOJI_BASE = ["👍", "👋", "🙏", "💪", "🤝", "👩", "👨", "🧑", "👶", "🧒", "🏃", "🚴", "🤷", "🙋", "💁"];
const EMOJI_PLAIN = ["😀", "😂", "🥲", "🔥", "✨", "🎉", "❤️", "🇫🇷", "🇯🇵", "🇧🇷", "🏳️‍🌈", "🏴‍☠️", "#️⃣", "1️⃣",
  "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "☺︎", "🫠", "🧬", "⚙️", "🐈‍⬛", "😶‍🌫️", "❤️‍🔥"];
const ZWJ_FAMILY = ["👨‍👩‍👧‍👦", "👩‍👩‍👦", "👨‍👨‍👧", "👩‍❤️‍👨", "👩‍💻", "🧑‍🚀", "👨‍🍳", "🧑‍⚕️", "👩‍🔬", "🧑‍🤝‍🧑"];
const SKIN = [0x1f3fb, 0x1f3fc, 0x1f3fd, 0x1f3fe, 0x1f3ff];
const WS = [" ", "  ", "\t", "\n", "\r\n", "\n\n", " \n", "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085",
  "\ufeff", "\u200b", "\u2003", "\u202f", "\u000b", "\u000c", "\u001c"];
const SPECIAL = ["<|eot|>", "<|begin_of_text|>", "<|header_start|>", "<|python_start|>", "<|image|>", "<|eot|",
  "<|not_a_token|>", "<||>"];

function sentence(pool, n) {
  let s = "";
  for (let i = 0; i < n; ++i) s += pick(pool) + (rand() < 0.2 ? pick(WS) : " ");
  return s;
}

// ---- categories ------------------------------------------------------------------------
function code() {
  const ids = ["value", "count", "buffer_size", "parseHeader", "kMaxTokens", "x", "i", "tokenIds", "HTTPServer",
    "__init__", "self", "node_modules", "std::vector<int32_t>", "résultat", "数据", "Δt"];
  const lang = int(6);
  const id = () => pick(ids) + (rand() < 0.3 ? int(100) : "");
  const ind = (d) => (rand() < 0.5 ? "\t".repeat(d) : "    ".repeat(d));
  let s = "";
  const lines = 3 + int(40);
  for (let l = 0; l < lines; ++l) {
    const d = int(4);
    switch (lang) {
      case 0: s += `${ind(d)}for (size_t ${id()} = 0; ${id()} < ${int(1000)}; ++${id()}) { ${id()} += ${id()}[${int(9)}] * 0x${int(65536).toString(16)}; }\n`; break;
      case 1: s += `${ind(d)}def ${id()}(${id()}, *args, **kwargs):  # ${pick(ENGLISH)}\n${ind(d + 1)}return [${id()} ** 2 for ${id()} in range(${int(50)}) if ${id()} != '${pick(ENGLISH).slice(0, 10)}']\n`; break;
      case 2: s += `${ind(d)}const ${id()} = await fetch(\`/api/v${int(3)}/\${${id()}}\`).then((r) => r.json()); // TODO(${pick(ids)})\n`; break;
      case 3: s += `${ind(d)}{"${id()}": [${int(100)}, ${(rand() * 100).toFixed(3)}, null, true], "${id()}": "${pick(CJK)}"},\n`; break;
      case 4: s += `${ind(d)}<div class="${id()}" data-x='${int(99)}'>&lt;${id()}&gt; ${pick(OTHER)}</div>\n`; break;
      default: s += `${ind(d)}fn ${id()}<'a>(${id()}: &'a mut Vec<u8>) -> Result<(), Box<dyn Error>> { ${id()}.push(b'\\n'); Ok(()) }\n`;
    }
    if (rand() < 0.1) s += "\n";
  }
  return s;
}
function cjk() {
  let s = "";
  const n = 5 + int(60);
  for (let i = 0; i < n; ++i) {
    const r = rand();
    if (r < 0.4) s += pick(CJK);
    else if (r < 0.6) for (let k = int(20); k >= 0; --k) s += range(0x4e00, 0x9fff);
    else if (r < 0.7) for (let k = int(20); k >= 0; --k) s += range(0x3041, 0x3096) + range(0x30a1, 0x30fa);
    else if (r < 0.8) for (let k = int(15); k >= 0; --k) s += range(0xac00, 0xd7a3);
    else s += pick(["。", "、", "！", "？", "「", "」", "（", "）", "…", " ", "\n", "ー", "〜"]);
  }
  return s;
}
function rtl() {
  let s = "";
  const n = 3 + int(40);
  for (let i = 0; i < n; ++i) {
    const r = rand();
    if (r < 0.5) s += pick(RTL);
    else if (r < 0.65) for (let k = int(12); k >= 0; --k) s += range(0x0621, 0x064a) + (rand() < 0.3 ? range(0x064b, 0x0652) : "");
    else if (r < 0.8) for (let k = int(12); k >= 0; --k) s += range(0x05d0, 0x05ea) + (rand() < 0.3 ? range(0x05b0, 0x05bc) : "");
    else if (r < 0.9) s += String(int(100000)) + pick(["٫", ".", ",", "٬"]) + range(0x0660, 0x0669) + range(0x06f0, 0x06f9);
    else s += pick(["\u200f", "\u200e", "\u202b", "\u202c", "\u2067", "\u2069"]) + pick(ENGLISH);
    s += pick([" ", " ", "، ", ". ", "\n", "؟ "]);
  }
  return s;
}
function emoji() {
  let s = "";
  const n = 5 + int(80);
  for (let i = 0; i < n; ++i) {
    const r = rand();
    if (r < 0.3) s += pick(EMOJI_BASE) + cp(pick(SKIN));
    else if (r < 0.5) s += pick(ZWJ_FAMILY);
    else if (r < 0.6) s += pick(["👩", "👨", "🧑"]) + cp(pick(SKIN)) + "\u200d" + pick(["💻", "🚀", "🍳", "🔬", "🎨"]);
    else if (r < 0.7) s += cp(0x1f1e6 + int(26)) + cp(0x1f1e6 + int(26));  // flags, valid or not
    else if (r < 0.85) s += pick(EMOJI_PLAIN);
    else s += pick(ENGLISH).split(" ").slice(0, 1 + int(4)).join(" ");
    s += rand() < 0.5 ? "" : pick([" ", "", "\n", "!", "..."]);
  }
  return s;
}
function combining() {
  let s = "";
  const n = 5 + int(60);
  for (let i = 0; i < n; ++i) {
    const r = rand();
    if (r < 0.4) {
      const w = 1 + int(8);
      for (let k = 0; k < w; ++k) {
        s += range(0x61, 0x7a);
        for (let m = int(rand() < 0.1 ? 12 : 3); m > 0; --m) s += range(0x0300, 0x036f);
      }
    } else if (r < 0.55) {
      s += pick(OTHER);
    } else if (r < 0.7) {
      for (let k = int(10); k >= 0; --k) s += range(0x0915, 0x0939) + pick(["्", "ा", "ि", "ी", "ु", "ं", "", "़"]);
    } else if (r < 0.8) {
      for (let k = int(10); k >= 0; --k) s += range(0x0e01, 0x0e2e) + pick(["\u0e31", "\u0e34", "\u0e48", "\u0e49", "", "\u0e47"]);
    } else if (r < 0.9) {
      s += pick(ENGLISH).normalize("NFD");
    } else {
      s += "\u0301\u0302" + pick(["x", "Ω", "д", "ß"]) + "\u20dd";  // marks with no base letter
    }
    s += pick([" ", " ", "\n", ", "]);
  }
  return s;
}
// 1234567 -> "1,234,567" (by hand: toLocaleString depends on the ICU build).
const group = (n, sep) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, sep);
function numbersWhitespace() {
  let s = "";
  const n = 5 + int(60);
  for (let i = 0; i < n; ++i) {
    const r = rand();
    if (r < 0.3) s += String(int(1e9)).repeat(1 + int(3));
    else if (r < 0.4) s += (rand() * 1e6).toFixed(int(8)) + pick(["e-9", "E+12", "%", "", "°C"]);
    else if (r < 0.5) s += group(int(1e9), ",") + " " + group(int(1e9), ".") + " " + group(int(1e6), "\u202f");
    else if (r < 0.55) for (let k = int(8); k >= 0; --k) s += range(0xff10, 0xff19) + range(0x0966, 0x096f) + range(0x2460, 0x2473);
    // Runs stay short: js-tiktoken's merge is quadratic in the piece length (herd's unit tests
    // cover runs of 60 000).
    else if (r < 0.75) s += pick(WS).repeat(1 + int(rand() < 0.1 ? 200 : 12));
    else if (r < 0.85) { for (let k = int(10); k >= 0; --k) s += pick(WS); }
    else s += pick(ENGLISH);
    if (rand() < 0.05) s += pick(SPECIAL);
  }
  return s;
}
function mixed() {
  let s = "";
  const n = 3 + int(30);
  for (let i = 0; i < n; ++i) s += [sentence(ENGLISH, 1 + int(6)), head(cjk(), 40), head(rtl(), 40),
    head(emoji(), 30), pick(SPECIAL), head(numbersWhitespace(), 30)][int(6)];
  return s;
}

const CATEGORIES = { code, cjk, rtl, emoji, combining, numbers_whitespace: numbersWhitespace, mixed };
const MIN_BYTES = 150 * 1000;  // per category: above the 100 KB the brief asks for
const out = [];
const sizes = {};
for (const [name, gen] of Object.entries(CATEGORIES)) {
  let bytes = 0, count = 0;
  while (bytes < MIN_BYTES || count < 300) {
    let s = gen();
    if (rand() < 0.05) s = s + gen() + gen();  // some long strings
    s = head(s, 19999);  // < 20 000 characters
    if (s.length === 0) continue;
    out.push(s);
    bytes += Buffer.byteLength(s, "utf8");
    ++count;
  }
  sizes[name] = { strings: count, bytes };
}
// Edge cases, kept verbatim.
out.push(" ", "\n", "a", "'s", "ſ", "'S'T'RE'VE'M'LL'D", " ".repeat(500), "1".repeat(19999),
  "<|eot|>", "<|eot|><|eot|>", "x<|begin_of_text|>y", "\ufeff\u0085\u00a0", "\r\n\r\n", "a\u0301", "🏽");
fs.writeFileSync(process.argv[2], out.map((s) => JSON.stringify(s)).join("\n") + "\n");
const total = out.reduce((n, s) => n + Buffer.byteLength(s, "utf8"), 0);
console.log(JSON.stringify({ strings: out.length, bytes: total, categories: sizes }));
