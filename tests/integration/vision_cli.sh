#!/bin/bash
# `herd logits --image` / `herd run --image` end to end (issue 13): PNGs written by Pillow, the
# §5.8 layout written here from the spec (not by herd), logits compared byte for byte.
#   logits before <|image_start|> are bit-identical whatever the image; after it they differ;
#   a layout that does not match the image's tile grid is an error; a text-only extraction
#   (vision_config, no vision tensors) loads with one warning and refuses images.
set -euo pipefail
HERD=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$HERD" synth --vision -o "$T/m" 2>/dev/null
/usr/bin/python3 - "$T" <<'EOF'
import sys
from PIL import Image
t = sys.argv[1]
for name, k in (("a", 3), ("b", 7)):
    im = Image.new("RGB", (640, 480))
    im.putdata([((x * k) & 255, (y * 5) & 255, (x + y * k) & 255) for y in range(480) for x in range(640)])
    im.save(f"{t}/{name}.png")
Image.new("RGB", (300, 200), (200, 30, 90)).save(f"{t}/small.png")
# Spec §5.8 for 2x2 tiles: rows of 144 patches split by tile_x, each row ended by tile_y, then
# <|image|> + the global tile's 144 patches.
P = "<|patch|>" * 144
layout = "<|image_start|>" + (P + "<|tile_x_separator|>" + P + "<|tile_y_separator|>") * 2 + \
         "<|image|>" + P + "<|image_end|>"
open(f"{t}/prompt.txt", "w").write("Look: " + layout + " what is it?")
open(f"{t}/prefix_len.txt", "w").write(str(len("Look: ".encode())))  # byte tokenizer
EOF
"$HERD" tokenize -m "$T/m" --special < "$T/prompt.txt" > "$T/ids.json"
START=$(cat "$T/prefix_len.txt")

"$HERD" logits -m "$T/m" --tokens-file "$T/ids.json" --all --image "$T/a.png" -o "$T/a.bin" 2>/dev/null
"$HERD" logits -m "$T/m" --tokens-file "$T/ids.json" --all --image "$T/b.png" -o "$T/b.bin" 2>/dev/null
/usr/bin/python3 - "$T" "$START" <<'EOF'
import json, sys
import numpy as np
t, start = sys.argv[1], int(sys.argv[2])
n = len(json.load(open(f"{t}/ids.json")))
a = np.fromfile(f"{t}/a.bin", dtype=np.float32).reshape(n, -1)
b = np.fromfile(f"{t}/b.bin", dtype=np.float32).reshape(n, -1)
assert n == start + 727 + len(" what is it?"), n
same = [p for p in range(n) if (a[p].tobytes() == b[p].tobytes())]
# Positions 0..start (the <|image_start|> itself included) see only text.
assert same == list(range(start + 1)), f"identical rows: {same[:10]}... (expected 0..{start})"
print(f"ok: {n} positions, rows 0..{start} bit-identical, {n - start - 1} rows after differ")
EOF

# The 300x200 image is one tile: the 2x2 layout does not fit it.
if "$HERD" logits -m "$T/m" --tokens-file "$T/ids.json" --image "$T/small.png" -o "$T/c.bin" 2> "$T/err"; then
  fail "a layout for 2x2 tiles accepted a one-tile image"
fi
grep -q "herd: error: image 1: the tokens from 6 are not the layout of its 1x1 tiles" "$T/err" || fail "unexpected message: $(cat "$T/err")"
# One image for the tokens, two given.
if "$HERD" logits -m "$T/m" --tokens-file "$T/ids.json" --image "$T/a.png" --image "$T/b.png" \
  -o "$T/c.bin" 2> "$T/err"; then
  fail "two images for one layout accepted"
fi
grep -q "the tokens hold 1 images (<|image_start|> tokens) but 2 images were given" "$T/err" || fail "unexpected: $(cat "$T/err")"

# herd run builds the layout itself: BOS + 727 image tokens + 8 text tokens.
"$HERD" run -m "$T/m" -p "Describe" --image "$T/a.png" -n 2 > /dev/null 2> "$T/err"
grep -q "prompt 736 tokens" "$T/err" || fail "herd run --image: $(cat "$T/err")"

# A text-only extraction: config with vision_config, no vision tensors in the files.
mkdir "$T/x"
"$HERD" synth --text-only --shards 1 -o "$T/flat" 2>/dev/null
cp "$T/m/config.json" "$T/m/tokenizer.json" "$T/m/tokenizer_config.json" "$T/x/"
/usr/bin/python3 - "$T" <<'EOF'
# Rename the flat text tensors into the nested layout (language_model.*), vision left out.
import json, struct, sys
t = sys.argv[1]
raw = open(f"{t}/flat/model.safetensors", "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
hdr = json.loads(raw[8:8 + n])
new = {("language_model." + k if k != "__metadata__" else k): v for k, v in hdr.items()}
h = json.dumps(new).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(f"{t}/x/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
EOF
"$HERD" logits -m "$T/x" --tokens 1,2,3 -o "$T/x.bin" 2> "$T/err" || fail "text extraction: $(cat "$T/err")"
[ "$(grep -c "no vision tensors" "$T/err")" = 1 ] || fail "expected one warning: $(cat "$T/err")"
if "$HERD" logits -m "$T/x" --tokens-file "$T/ids.json" --image "$T/a.png" -o "$T/x.bin" 2> "$T/err"; then
  fail "an image accepted by a model without vision tensors"
fi
grep -q "herd: error: --image: .*no vision encoder" "$T/err" || fail "unexpected: $(cat "$T/err")"
echo "ok: vision CLI"
