"""The training corpus: Debian's `fortunes` and `fortunes-min` packages (BSD license, see
README.md), split into documents at the `%` lines, with a fixed held-out split.

Tokens are herd's byte-level fallback vocabulary (src/herd/convert/synth_tokenizer.cc): ids 0-255
are the UTF-8 bytes, the 21 Llama 4 specials follow from 256 in Meta's order.
"""
import os
import zlib

FORTUNE_DIR = "/usr/share/games/fortunes"
# Pictures and non-English text, not prose.
EXCLUDE = {"art", "ascii-art", "translate-me"}
BOS, END_OF_TEXT = 256, 257  # <|begin_of_text|>, <|end_of_text|>
HELDOUT_MOD = 20  # one document in 20 (by CRC-32 of its text) is held out


def documents(fortune_dir=FORTUNE_DIR):
    docs, seen = [], set()
    for name in sorted(os.listdir(fortune_dir)):
        path = os.path.join(fortune_dir, name)
        if "." in name or name in EXCLUDE or not os.path.isfile(path):
            continue  # .dat indexes and .u8 links are not text
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        for d in text.split("\n%\n"):
            d = d.strip("\n%").rstrip()
            if len(d) < 16 or d in seen:
                continue
            seen.add(d)
            docs.append(d)
    return docs


def split(docs):
    """(train, heldout): stable under reordering of the files, so the split is reproducible."""
    train, held = [], []
    for d in docs:
        (held if zlib.crc32(d.encode()) % HELDOUT_MOD == 0 else train).append(d)
    return train, held


def encode_doc(d):
    return [BOS] + list(d.encode("utf-8")) + [END_OF_TEXT]
