#!/usr/bin/env python3
"""Side-by-side speed of herd and llama.cpp on the same synthetic checkpoint (issue: fast CPU).

One run does, on the `bench` preset (~2 GB BF16, 16 experts):
  1. builds llama.cpp's llama-bench / llama-quantize once from the pinned node-llama-cpp source
     bundle (bench/build_llama_cpp.sh, outside the repository);
  2. exports the checkpoint to a BF16 GGUF and quantizes it with llama.cpp's own quantizer to
     Q8_0 and `--pure` Q4_0;
  3. measures the memory bandwidth (herd bench --probe: 2 threads, read-only, 1 GiB, best of 5);
  4. alternates `llama-bench` and `herd bench` for each format pair, several rounds, and reports
     medians, ratios, bytes read per decoded token on each side and the fraction of the roofline
     (bytes/token / bandwidth).
Benchmarks are not part of `make test`. Usage: bench/compare_llama_cpp.py [--rounds 3] [--work DIR]
"""
import argparse, json, os, statistics, struct, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = [("bf16", "BF16"), ("int8", "Q8_0"), ("int4-all", "Q4_0")]
GGML_BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18)}  # type: (elems, bytes)


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, **kw).stdout


def gguf_bytes_per_token(path):
    """Weight bytes one decoded token reads in a llama4 GGUF: every tensor, except one row of
    token_embd and 1/n_expert of each *_exps tensor (top-1 routing)."""
    with open(path, "rb") as f:
        data = f.read(64 << 20)
    off = 0

    def u(fmt):
        nonlocal off
        v = struct.unpack_from("<" + fmt, data, off)
        off += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal off
        n = u("Q")
        s = data[off:off + n].decode()
        off += n
        return s

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = u("I"), u("Q")
            return [value(et) for _ in range(n)]
        fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}[t]
        return u(fmt)

    assert data[:4] == b"GGUF", path
    off = 8
    n_t, n_kv = u("Q"), u("Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(u("I"))
    n_exp = kv.get("llama4.expert_count", 1) or 1
    total = 0
    for _ in range(n_t):
        name = string()
        nd = u("I")
        ne = [u("Q") for _ in range(nd)]
        t = u("I")
        u("Q")
        elems, nbytes = GGML_BLOCK[t]
        count = 1
        for d in ne:
            count *= d
        b = count // elems * nbytes
        if name == "token_embd.weight":
            b //= ne[1]
        elif "_exps" in name:
            b //= n_exp
        total += b
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/herd/bench-work"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="repetitions inside each tool run")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--formats", default="bf16,int8,int4-all")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    herd = os.path.join(ROOT, "build", "herd")
    os.makedirs(a.work, exist_ok=True)
    bindir = run([os.path.join(ROOT, "bench", "build_llama_cpp.sh")]).strip().splitlines()[-1]
    model = os.path.join(a.work, "bench")
    if not os.path.exists(os.path.join(model, "config.json")):
        run([herd, "synth", "--preset", "bench", "-o", model])
    ggufs = {"BF16": os.path.join(a.work, "bench-bf16.gguf")}
    if not os.path.exists(ggufs["BF16"]):
        run([herd, "export-gguf", "-m", model, "-o", ggufs["BF16"], "--dtype", "bf16"])
    for q in ("Q8_0", "Q4_0"):
        ggufs[q] = os.path.join(a.work, f"bench-{q.lower()}.gguf")
        if not os.path.exists(ggufs[q]):
            extra = ["--pure"] if q == "Q4_0" else []
            run([os.path.join(bindir, "llama-quantize")] + extra + [ggufs["BF16"], ggufs[q], q, str(a.threads)])
    probe = json.loads(run([herd, "bench", "--probe", "--json", "-t", str(a.threads)]))
    bw = probe["bandwidth_gb_s"]
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    results = {"machine": f"{cpu}, {os.cpu_count()} logical CPUs", "threads": a.threads,
               "bandwidth_gb_s": bw, "date": time.strftime("%Y-%m-%d %H:%M"), "pairs": []}
    wanted = a.formats.split(",")
    for hq, lq in PAIRS:
        if hq not in wanted:
            continue
        h_pp, h_tg, l_pp, l_tg, h_json = [], [], [], [], None
        for r in range(a.rounds):
            out = run([os.path.join(bindir, "llama-bench"), "-m", ggufs[lq], "-p", str(a.p), "-n", str(a.n),
                       "-t", str(a.threads), "-r", str(a.repeats), "-o", "json"])
            for row in json.loads(out):
                (l_pp if row["n_prompt"] > 0 else l_tg).append(row["avg_ts"])
            h_json = json.loads(run([herd, "bench", "-m", model, "--quant", hq, "-p", str(a.p), "-n", str(a.n),
                                     "-t", str(a.threads), "-r", str(a.repeats), "--json"]))
            h_pp.append(h_json["prefill_tok_s"])
            h_tg.append(h_json["decode_tok_s"])
        hb, lb = h_json["bytes_per_token"], gguf_bytes_per_token(ggufs[lq])
        row = {"herd": hq, "llama_cpp": lq,
               "herd_prefill_tok_s": statistics.median(h_pp), "llama_prefill_tok_s": statistics.median(l_pp),
               "herd_decode_tok_s": statistics.median(h_tg), "llama_decode_tok_s": statistics.median(l_tg),
               "herd_bytes_per_token": hb, "llama_bytes_per_token": lb,
               "herd_peak_rss_bytes": h_json["peak_rss_bytes"], "herd_load_s": h_json["load_s"]}
        row["prefill_ratio"] = row["herd_prefill_tok_s"] / row["llama_prefill_tok_s"]
        row["decode_ratio"] = row["herd_decode_tok_s"] / row["llama_decode_tok_s"]
        row["herd_roofline"] = row["herd_decode_tok_s"] * hb / (bw * 1e9)
        row["llama_roofline"] = row["llama_decode_tok_s"] * lb / (bw * 1e9)
        row["rounds"] = {"herd_pp": h_pp, "herd_tg": h_tg, "llama_pp": l_pp, "llama_tg": l_tg}
        results["pairs"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"\nmachine: {results['machine']}; {a.threads} threads; bandwidth {bw:.1f} GB/s; {results['date']}")
    print(f"| herd | llama.cpp | decode herd / llama (tok/s) | ratio | roofline herd / llama | "
          f"prefill pp{a.p} herd / llama (tok/s) | ratio | MB/token herd / llama |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["pairs"]:
        print(f"| {r['herd']} | {r['llama_cpp']} | {r['herd_decode_tok_s']:.2f} / {r['llama_decode_tok_s']:.2f} | "
              f"{r['decode_ratio']:.2f}x | {r['herd_roofline']:.0%} / {r['llama_roofline']:.0%} | "
              f"{r['herd_prefill_tok_s']:.1f} / {r['llama_prefill_tok_s']:.1f} | {r['prefill_ratio']:.2f}x | "
              f"{r['herd_bytes_per_token']/1e6:.1f} / {r['llama_bytes_per_token']/1e6:.1f} |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
