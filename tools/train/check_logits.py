"""Checks that herd computes the same logits as the torch model that trained the weights.

  /usr/bin/python3 tools/train/check_logits.py --ckpt tools/train/out/ckpt.pt \
      --model models/default --herd build/herd

The torch model runs in f32 on the bf16-rounded weights herd loads; herd runs with
`--precision f32` (its reference kernels). The prompt is a held-out text longer than
attention_chunk_size and floor_scale, so chunking, the NoPE temperature and the llama3 rope
scaling are all exercised. Prints max |Δ| over every position and the top-1 agreement.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import corpus
from export import load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="tools/train/out/ckpt.pt")
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--herd", default="build/herd")
    ap.add_argument("--tokens", type=int, default=300)
    ap.add_argument("--tol", type=float, default=2e-3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load(args.ckpt)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    _, held = corpus.split(corpus.documents())
    stream = [t for d in held for t in corpus.encode_doc(d)]
    tokens = stream[: args.tokens]
    with torch.no_grad():
        ref = model(torch.tensor([tokens])).squeeze(0).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        tok_file, out = os.path.join(tmp, "tokens.txt"), os.path.join(tmp, "logits.f32")
        with open(tok_file, "w") as f:
            f.write(",".join(map(str, tokens)))
        subprocess.run([args.herd, "logits", "-m", args.model, "--precision", "f32",
                        "--tokens-file", tok_file, "--all", "-o", out], check=True)
        got = np.fromfile(out, dtype=np.float32).reshape(len(tokens), -1)
    d = np.abs(got - ref)
    top1 = float((got.argmax(-1) == ref.argmax(-1)).mean())
    print(f"{len(tokens)} positions, vocab {ref.shape[1]}: max |Δ| {d.max():.3g} "
          f"(at position {d.max(-1).argmax()}), mean |Δ| {d.mean():.3g}, "
          f"logit range ±{np.abs(ref).max():.1f}, top-1 agreement {top1:.4f}")
    sys.exit(0 if d.max() <= args.tol else 1)


if __name__ == "__main__":
    main()
