#!/usr/bin/env python3
"""Writes the seed corpus of the image fuzz target (tests/fuzz/corpus_image) with Pillow: small
images in every format and variant the decoder handles. Each file is one settings byte (tile
size and tile limit, see fuzz_image.cc) followed by the image. usage: make_image_corpus.py DIR"""
import io
import sys
from pathlib import Path

from PIL import Image

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
base = Image.new("RGB", (23, 9))
base.putdata([((x * 11) % 256, (y * 29) % 256, (x * y) % 256) for y in range(9) for x in range(23)])
rgba = base.copy()
rgba.putalpha(Image.linear_gradient("L").resize((23, 9)))
pal = base.quantize(8)
frames = [base.quantize(4), base.rotate(180).quantize(4)]


def save(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


seeds = {
    "rgb.png": save(base, "PNG"), "rgba.png": save(rgba, "PNG"), "grey.png": save(base.convert("L"), "PNG"),
    "palette_trns.png": save(pal, "PNG", transparency=2),
    "grey16.png": save(base.convert("L").convert("I").point(lambda v: v * 257), "PNG"),
    "bilevel.png": save(base.convert("1"), "PNG"),
    "baseline.jpg": save(base, "JPEG", quality=80),
    "progressive.jpg": save(base, "JPEG", quality=80, progressive=True),
    "grey.jpg": save(base.convert("L"), "JPEG"),
    "rgb.bmp": save(base, "BMP"), "palette.bmp": save(pal, "BMP"), "bilevel.bmp": save(base.convert("1"), "BMP"),
    "animated.gif": save(frames[0], "GIF", save_all=True, append_images=frames[1:]),
    "tall.png": save(base.resize((3, 700)), "PNG"), "wide.gif": save(base.resize((900, 2)).quantize(4), "GIF"),
}
exif = Image.Exif()
exif[0x0112] = 6  # rotate 90° clockwise
seeds["exif_rotated.jpg"] = save(base, "JPEG", exif=exif.tobytes())
exif[0x0112] = 5
seeds["exif_transposed.png"] = save(base, "PNG", exif=exif.tobytes())
for i, (name, data) in enumerate(sorted(seeds.items())):
    (out / name).write_bytes(bytes([(i * 37) % 256]) + data)
