"""Trains the default model (models/default) on one CPU thread.

  /usr/bin/python3 tools/train/train.py --out tools/train/out --steps 1200

Writes OUT/train.log (one line per --log-every steps: step, loss, held-out loss, lr, seconds),
OUT/ckpt.pt every --ckpt-every steps and at the end, so a partial run still has weights.
"""
import argparse
import json
import math
import os
import random
import time
from dataclasses import asdict

import torch
import torch.nn.functional as F

import corpus
from model import Config, Llama4Text


def windows(stream, starts, T, rng, batch):
    """`batch` windows of T+1 tokens, each starting at a document's BOS (as herd's prompts do)."""
    rows = []
    for _ in range(batch):
        s = starts[rng.randrange(len(starts))]
        rows.append(stream[s:s + T + 1])
    return torch.tensor(rows, dtype=torch.long)


def build_stream(docs, rng):
    docs = list(docs)
    rng.shuffle(docs)
    stream, starts = [], []
    for d in docs:
        starts.append(len(stream))
        stream += corpus.encode_doc(d)
    return stream, starts


@torch.no_grad()
def evaluate(model, stream, T, max_windows=None):
    """Mean next-token loss over consecutive windows of the held-out stream."""
    model.eval()
    total, n = 0.0, 0
    xs = [stream[i:i + T + 1] for i in range(0, len(stream) - T - 1, T)]
    if max_windows:
        xs = xs[:max_windows]
    for i in range(0, len(xs), 8):
        x = torch.tensor(xs[i:i + 8], dtype=torch.long)
        logits = model(x[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                 reduction="sum").item()
        n += x[:, 1:].numel()
    model.train()
    return total / max(n, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tools/train/out")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--aux", type=float, default=0.01, help="load-balancing loss weight")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--ckpt-every", type=int, default=100)
    args = ap.parse_args()

    torch.set_num_threads(1)  # the machine is shared; one core is the budget
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    train_docs, held_docs = corpus.split(corpus.documents())
    stream, starts = build_stream(train_docs, rng)
    starts = [s for s in starts if s + args.seq + 1 <= len(stream)]  # whole windows only
    held_stream = [t for d in held_docs for t in corpus.encode_doc(d)]

    cfg = Config()
    model = Llama4Text(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    log = open(os.path.join(args.out, "train.log"), "a")

    def say(obj):
        line = json.dumps(obj)
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    say({"event": "start", "seed": args.seed, "args": vars(args), "config": asdict(cfg),
         "params": n_params, "train_docs": len(train_docs), "heldout_docs": len(held_docs),
         "train_tokens": len(stream), "heldout_tokens": len(held_stream)})

    def save(step, held):
        tmp = os.path.join(args.out, "ckpt.pt.tmp")
        torch.save({"model": model.state_dict(), "config": asdict(cfg), "step": step,
                    "seed": args.seed, "heldout_loss": held}, tmp)
        os.replace(tmp, os.path.join(args.out, "ckpt.pt"))

    t0, run_loss, held = time.time(), 0.0, None
    for step in range(1, args.steps + 1):
        # Linear warm-up, cosine decay to 10%.
        if step <= args.warmup:
            lr = args.lr * step / args.warmup
        else:
            frac = (step - args.warmup) / max(1, args.steps - args.warmup)
            lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = windows(stream, starts, args.seq, rng, args.batch)
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), x[:, 1:].reshape(-1))
        total = loss + args.aux * model.aux_loss()
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += loss.item()
        if step % args.log_every == 0:
            counts = [l.feed_forward.counts.tolist() for l in model.layers
                      if hasattr(l.feed_forward, "counts")]
            say({"step": step, "loss": round(run_loss / args.log_every, 4), "lr": round(lr, 6),
                 "s": round(time.time() - t0, 1), "experts": counts})
            run_loss = 0.0
        if step % args.eval_every == 0 or step == args.steps:
            full = step == args.steps
            held = evaluate(model, held_stream, args.seq, None if full else 16)
            say({"step": step, "heldout_loss": round(held, 4), "heldout_full": full,
                 "s": round(time.time() - t0, 1)})
        if step % args.ckpt_every == 0 or step == args.steps:
            save(step, held)
    say({"event": "done", "steps": args.steps, "heldout_loss": held, "s": round(time.time() - t0, 1)})


if __name__ == "__main__":
    main()
