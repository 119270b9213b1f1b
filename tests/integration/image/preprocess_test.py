#!/usr/bin/env python3
"""Llama 4 image preprocessing against independent references (CTest vision_preprocess).

1. Canvas, resized size and token count: spec §5.1 steps 2-4 and §5.8 written again here in
   exact rational arithmetic (fractions), over the spec's examples, named aspect ratios and a
   seeded sweep of random sizes, for both resize_to_max_canvas settings.
2. Resized pixels: herd's resize against Pillow's Image.resize(size, BILINEAR) (Debian
   python3-pil, the resampler Meta's preprocessing uses), downscales and upscales, within one
   grey level; the share of pixels that differ at all is printed.
3. Whole preprocessing: the tiles herd writes against Pillow + numpy doing spec §5.1 steps 5-9
   (resize, pad black, normalise (x/255-0.5)/0.5, row-major tiles, global tile last).
4. Decoding: PNG (RGB, RGBA, L, LA, palette with transparency, 16-bit), BMP, GIF (first frame
   of an animation), JPEG (baseline, progressive) against Pillow's decoder; RGBA composited over
   white as Pillow's paste with the alpha mask does.
5. Errors: truncated PNG, a 20000x20000 PNG header, non-image bytes.
6. The §5.8 token layout against HF-PROC's _prompt_split_image written again here and against
   the expanded image prompts in Meta's prompt_format.md.

usage: preprocess_test.py IMAGE_TOOL LLAMA4_DIR WORK_DIR
"""
import io
import random
import re
import struct
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

tool, llama4, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
work.mkdir(parents=True, exist_ok=True)
TILE = 336
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def run(*args, stdin=None):
    return subprocess.run([tool, *map(str, args)], input=stdin, capture_output=True, text=True)


# ---- 1. canvas plan -----------------------------------------------------------------------

def candidates(max_tiles):
    """find_supported_resolutions (HF-IMG / META-PRE): grouped by float aspect ratio."""
    groups = {}
    for n in range(max_tiles, 0, -1):
        for h in sorted(f for f in range(1, n + 1) if n % f == 0):
            groups.setdefault(h / (n // h), []).append((h, n // h))
    return [hw for g in groups.values() for hw in g]


def plan(W, H, max_tiles=16, max_canvas=False):
    cands = candidates(max_tiles)
    scales = [min(Fraction(w * TILE, W), Fraction(h * TILE, H)) for h, w in cands]
    up = [s for s in scales if s >= 1]
    if up:
        chosen = max(up) if max_canvas else min(up)
    else:
        chosen = max(scales)
    best = min((i for i, s in enumerate(scales) if s == chosen),
               key=lambda i: (cands[i][0] * cands[i][1], i))
    rows, cols = cands[best]
    ch, cw = rows * TILE, cols * TILE
    th = ch if max_canvas else min(max(H, TILE), ch)
    tw = cw if max_canvas else min(max(W, TILE), cw)
    if Fraction(tw, W) < Fraction(th, H):
        nw, nh = tw, min(H * tw // W, th)
    else:
        nw, nh = min(W * th // H, tw), th
    n = rows * cols
    tokens = 147 if n == 1 else 144 * (n + 1) + n + 3  # spec §5.8
    return rows, cols, max(nw, 1), max(nh, 1), tokens


spec_examples = {  # spec §5.1 (H×W there) as (W, H): (rows, cols, tokens)
    (336, 336): (1, 1, 147), (100, 100): (1, 1, 147), (640, 480): (2, 2, 727),
    (1024, 768): (3, 4, 1887), (1920, 1080): (3, 5, 2322), (800, 300): (1, 3, 582)}
named = [(1920, 1080), (1080, 1920), (4000, 300), (300, 4000), (50, 2000), (2000, 50), (1, 1),
         (1, 5000), (5000, 1), (337, 335), (1000, 1000), (2048, 1536), (3024, 4032),
         (1366, 768), (800, 300), (1540, 2420), (672, 336), (16384, 16384), (7000, 200)]
rng = random.Random(13)
sweep = [(int(10 ** rng.uniform(0, 4)), int(10 ** rng.uniform(0, 4))) for _ in range(3000)]
sizes = list(spec_examples) + named + sweep
for max_canvas in (0, 1):
    for max_tiles in (16, 4):
        out = run("plan", TILE, max_tiles, max_canvas,
                  stdin="".join(f"{w} {h}\n" for w, h in sizes)).stdout.split("\n")
        bad = 0
        for (w, h), line in zip(sizes, out):
            got = tuple(int(x) for x in line.split()[2:])
            if got != plan(w, h, max_tiles, bool(max_canvas)):
                bad += 1
                if bad <= 5:
                    print(f"plan {w}x{h} tiles {max_tiles} max_canvas {max_canvas}: herd {got}, "
                          f"python {plan(w, h, max_tiles, bool(max_canvas))}")
        check(bad == 0 and len(out) >= len(sizes),
              f"plan: {bad} of {len(sizes)} sizes differ (max_tiles {max_tiles}, "
              f"max_canvas {max_canvas})")
for (w, h), (rows, cols, tokens) in spec_examples.items():
    check(plan(w, h)[0:2] == (rows, cols) and plan(w, h)[4] == tokens, f"spec example {w}x{h}")
check(plan(1920, 1080)[2:4] == (1680, 945), "spec: 1080x1920 resized to 945x1680")
check(len(candidates(16)) == 50, "50 candidate canvases")
print(f"plan: {len(sizes)} sizes x 4 settings agree")


# ---- 2./3. pixels against Pillow -------------------------------------------------------------

def test_image(w, h, seed):
    """Noise on top of gradients and a hard edge: every resampling weight matters."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                     ((x // 7 + y // 5) % 2) * 255], axis=-1)
    img = (base * 0.6 + r.integers(0, 256, (h, w, 3)) * 0.4).astype(np.uint8)
    return Image.fromarray(img, "RGB")


def herd_resize(path, w, h):
    out = work / "resized.rgb"
    p = run("resize", path, w, h, out)
    assert p.returncode == 0, p.stderr
    return np.frombuffer(out.read_bytes(), np.uint8).reshape(h, w, 3)


total = differ = 0
worst = 0
for (w, h), seed in zip([(640, 480), (1920, 1080), (100, 60), (800, 300), (2000, 500),
                         (37, 1500), (1023, 769), (5000, 40), (336, 336), (3000, 2000)],
                        range(100)):
    pil = test_image(w, h, seed)
    path = work / f"img_{w}x{h}.png"
    pil.save(path)
    _, _, rw, rh, _ = plan(w, h)
    for tw, th in {(rw, rh), (TILE, TILE)}:
        if (tw, th) == (w, h):
            continue
        ref = np.asarray(pil.resize((tw, th), Image.BILINEAR), dtype=np.int16)
        got = herd_resize(path, tw, th).astype(np.int16)
        d = np.abs(ref - got)
        worst = max(worst, int(d.max()))
        total += d.size
        differ += int((d > 0).sum())
        check(d.max() <= 1, f"resize {w}x{h} -> {tw}x{th}: max difference {d.max()}")
print(f"resize vs Pillow BILINEAR: max difference {worst} grey levels, "
      f"{differ} of {total} values differ")


def expected_tiles(pil):
    """Spec §5.1 steps 5-9 with Pillow and numpy."""
    w, h = pil.size
    rows, cols, rw, rh, _ = plan(w, h)
    resized = pil if (rw, rh) == (w, h) else pil.resize((rw, rh), Image.BILINEAR)
    canvas = np.zeros((rows * TILE, cols * TILE, 3), np.float32)
    canvas[:rh, :rw] = np.asarray(resized, np.float32)
    canvas = (canvas / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
    tiles = [canvas[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE].transpose(2, 0, 1)
             for r in range(rows) for c in range(cols)]
    if rows * cols > 1:
        g = np.asarray(pil.resize((TILE, TILE), Image.BILINEAR), np.float32)
        tiles.append(((g / np.float32(255) - np.float32(0.5)) / np.float32(0.5)).transpose(2, 0, 1))
    return rows, cols, np.stack(tiles)


for w, h in [(640, 480), (1920, 1080), (100, 60), (800, 300), (37, 1500)]:
    pil = Image.open(work / f"img_{w}x{h}.png").convert("RGB")
    out = work / "tiles.f32"
    p = run("preprocess", work / f"img_{w}x{h}.png", TILE, 16, out)
    check(p.returncode == 0, f"preprocess {w}x{h}: {p.stderr}")
    rows, cols, has_global, n_tiles, tokens = map(int, p.stdout.split())
    erows, ecols, want = expected_tiles(pil)
    got = np.frombuffer(out.read_bytes(), np.float32).reshape(n_tiles, 3, TILE, TILE)
    check((rows, cols, n_tiles, tokens) == (erows, ecols, len(want), plan(w, h)[4]),
          f"preprocess {w}x{h}: grid {rows}x{cols} n {n_tiles} tokens {tokens}")
    d = float(np.abs(got - want).max())
    check(d <= 2 / 255 + 1e-6, f"preprocess {w}x{h}: max difference {d}")
    print(f"preprocess {w}x{h}: {rows}x{cols} tiles + {has_global} global, {tokens} tokens, "
          f"max difference {d:.3g}")


# ---- 4. decoding against Pillow -------------------------------------------------------------

def herd_decode(data, name):
    path = work / name
    path.write_bytes(data)
    out = work / "decoded.rgb"
    p = run("decode", path, out)
    if p.returncode != 0:
        return None, p.stderr.strip()
    w, h = map(int, p.stdout.split())
    return np.frombuffer(out.read_bytes(), np.uint8).reshape(h, w, 3), ""


def over_white(pil):
    """Meta's RGBA -> RGB: paste on white with the alpha as mask."""
    rgba = pil.convert("RGBA")
    bg = Image.new("RGB", rgba.size, (255, 255, 255))
    bg.paste(rgba, mask=rgba.split()[3])
    return np.asarray(bg)


def encoded(pil, fmt, **kw):
    b = io.BytesIO()
    pil.save(b, fmt, **kw)
    return b.getvalue()


src = test_image(61, 47, 7)
alpha = Image.fromarray(np.random.default_rng(3).integers(0, 256, (47, 61), np.uint8), "L")
rgba = src.copy()
rgba.putalpha(alpha)
la = src.convert("L")
la.putalpha(alpha)
pal = src.quantize(64)
pal.info["transparency"] = 5
i16 = Image.fromarray((np.asarray(src.convert("L"), np.uint16) * 257).astype(np.uint16))
frames = [test_image(40, 30, s).quantize(32) for s in (1, 2, 3)]
gif = io.BytesIO()
frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
exact_cases = {
    "rgb.png": encoded(src, "PNG"), "rgba.png": encoded(rgba, "PNG"),
    "grey.png": encoded(src.convert("L"), "PNG"), "grey_alpha.png": encoded(la, "PNG"),
    "palette_transparent.png": encoded(pal, "PNG", transparency=5),
    "rgb.bmp": encoded(src, "BMP"), "grey.bmp": encoded(src.convert("L"), "BMP"),
    "palette.bmp": encoded(pal.convert("RGB").quantize(16), "BMP"),
    "animated.gif": gif.getvalue(),
}
for name, data in exact_cases.items():
    got, err = herd_decode(data, name)
    ref = Image.open(io.BytesIO(data))
    ref.seek(0)
    want = over_white(ref)
    check(got is not None and got.shape == want.shape and (got == want).all(),
          f"decode {name}: {err or 'differs from Pillow'}")
got, err = herd_decode(encoded(i16, "PNG"), "grey16.png")
want = np.repeat((np.asarray(i16, np.uint32) >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
check(got is not None and np.abs(got.astype(int) - want).max() <= 1, f"decode grey16.png {err}")
for name, kw in {"baseline.jpg": {"quality": 92}, "progressive.jpg": {"quality": 92,
                                                                       "progressive": True}}.items():
    data = encoded(src, "JPEG", **kw)
    got, err = herd_decode(data, name)
    want = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.int16)
    d = np.abs(got.astype(np.int16) - want) if got is not None else None
    # stb and libjpeg differ in IDCT and chroma upsampling rounding, not in the picture.
    check(d is not None and d.mean() < 0.5 and d.max() <= 8,
          f"decode {name}: {err or f'mean {d.mean():.2f} max {d.max()}'}")
    if d is not None:
        print(f"decode {name}: vs Pillow mean {d.mean():.2f}, max {d.max()} grey levels")
print(f"decode: {len(exact_cases) + 1} PNG/BMP/GIF files equal Pillow's pixels")

# EXIF orientation: herd turns images upright as transformers' load_image does
# (PIL.ImageOps.exif_transpose), for JPEG (APP1) and PNG (eXIf).
from PIL import ImageOps  # noqa: E402
for orientation in range(1, 9):
    exif = Image.Exif()
    exif[0x0112] = orientation
    for fmt, tol in (("PNG", 0), ("JPEG", 8)):
        data = encoded(src, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
        got, err = herd_decode(data, f"orient{orientation}.{fmt.lower()}")
        want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"),
                          np.int16)
        ok = got is not None and got.shape == want.shape and np.abs(got - want).max() <= tol
        check(ok, f"EXIF orientation {orientation} {fmt}: {err or (got.shape, want.shape)}")
print("EXIF orientation: 1..8 in PNG and JPEG match Pillow's exif_transpose")


# ---- 5. errors -------------------------------------------------------------------------------

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


png = exact_cases["rgb.png"]
_, err = herd_decode(png[:len(png) // 2], "truncated.png")
check("truncated PNG" in err, f"truncated PNG: {err}")
huge = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 60001)) + chunk(b"IEND", b""))
_, err = herd_decode(huge, "huge.png")
check("20000x20000 pixels, more than the limit" in err, f"20000x20000 header: {err}")
bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100, 100, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * (64 << 20), 9)) + chunk(b"IEND", b""))
_, err = herd_decode(bomb, "bomb.png")
check("decompression bomb" in err, f"zlib bomb ({len(bomb)} bytes -> 64 MB): {err}")
_, err = herd_decode(b"GIF? no, just text\n" * 10, "text.gif")
check("not a JPEG, PNG, GIF or BMP image" in err, f"non-image: {err}")
print("errors:", "; ".join(herd_decode(d, n)[1] for d, n in
                           [(png[:len(png) // 2], "t.png"), (huge, "h.png"), (bomb, "b.png")]))


# ---- 6. token layout --------------------------------------------------------------------------

def hf_prompt_split_image(rows, cols, per_tile):
    """HF-PROC Llama4Processor._prompt_split_image."""
    s = "<|image_start|>"
    if rows * cols > 1:
        for yy in range(rows):
            for xx in range(cols):
                s += "<|patch|>" * per_tile
                if xx < cols - 1:
                    s += "<|tile_x_separator|>"
            s += "<|tile_y_separator|>"
    s += "<|image|>" + "<|patch|>" * per_tile + "<|image_end|>"
    return s


for rows, cols in [(1, 1), (1, 2), (2, 1), (2, 2), (3, 5), (4, 4), (1, 16)]:
    check(run("layout", rows, cols, 144).stdout == hf_prompt_split_image(rows, cols, 144),
          f"layout {rows}x{cols}")
md = (llama4 / "prompt_format.md").read_text()
meta = [b for b in re.findall(r"<\|image_start\|>.*?<\|image_end\|>", md, re.S)
        if "..." not in b and "`" not in b]
for block in meta:
    rows = block.count("<|tile_y_separator|>") or 1
    cols = block.count("<|tile_x_separator|>") // rows + 1
    check(run("layout", rows, cols, 144).stdout == block,
          f"layout {rows}x{cols} vs prompt_format.md")
print(f"layout: 7 grids vs HF's _prompt_split_image, {len(meta)} prompts of prompt_format.md")

if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("all preprocessing checks passed")
