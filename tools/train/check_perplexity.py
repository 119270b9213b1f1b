"""Cross-checks `herd perplexity --precision f32` with the torch model on the same windows.

  /usr/bin/python3 tools/train/check_perplexity.py --ckpt tools/train/out/ckpt.pt \
      --model models/default --herd build/herd --bytes 16384 --ctx 256

Same rules as herd (and llama-perplexity): BOS + the text's bytes, windows of ctx tokens with
the first replaced by BOS, the second half scored.
"""
import argparse
import json
import math
import os
import subprocess
import tempfile

import torch
import torch.nn.functional as F

import corpus
from export import load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="tools/train/out/ckpt.pt")
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--herd", default="build/herd")
    ap.add_argument("--bytes", type=int, default=16384)
    ap.add_argument("--ctx", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load(args.ckpt)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    with open(os.path.join(args.model, "heldout.txt"), "rb") as f:
        data = f.read(args.bytes)
    tokens = [corpus.BOS] + list(data)
    n, c, first = len(tokens) // args.ctx, args.ctx, args.ctx // 2
    nll = []
    with torch.no_grad():
        for w in range(n):
            win = [corpus.BOS] + tokens[w * c + 1:(w + 1) * c]
            lp = F.log_softmax(model(torch.tensor([win]))[0].double(), -1)
            for j in range(first, c - 1):
                nll.append(-lp[j, win[j + 1]].item())
    ppl = math.exp(sum(nll) / len(nll))
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "text.txt")
        with open(text, "wb") as f:
            f.write(data)
        out = subprocess.run([args.herd, "perplexity", "-m", args.model, "-f", text, "--ctx",
                              str(c), "--precision", "f32", "--json"],
                             check=True, capture_output=True, text=True).stdout
    h = json.loads(out)
    print(f"torch: ppl {ppl:.6f} over {len(nll)} tokens; herd: ppl {h['ppl']:.6f} over "
          f"{h['tokens']} tokens; relative difference {abs(h['ppl'] / ppl - 1):.2e}")


if __name__ == "__main__":
    main()
