#!/usr/bin/python3
# bench/report.py: read the JSON lines scripts/bench collected and print medians side by side,
# with the nnlua/PyTorch ratio (below 1 means nnlua is faster, for times).
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["bench"], r.get("op", ""), r["impl"])].append(r)

    def med(key, field):
        vals = [r[field] for r in groups.get(key, []) if field in r]
        return statistics.median(vals) if vals else None

    if any(k[0] == "micro" for k in groups):
        print("\n== micro (medians) ==")
        print(f"{'op':8} {'impl':10} {'median ms':>10} {'rate':>12}")
    for op, unit in (("matmul", "gflops"), ("add", "gbps"), ("relu", "gbps")):
        for impl in ("nnlua", "C cblas", "C loop", "pytorch"):
            t = med(("micro", op, impl), "median_s")
            if t is None:
                continue
            rate = med(("micro", op, impl), unit)
            print(f"{op:8} {impl:10} {t * 1e3:10.3f} {rate:9.1f} {'GFLOP/s' if unit == 'gflops' else 'GB/s'}")
        a, b = med(("micro", op, "nnlua"), "median_s"), med(("micro", op, "pytorch"), "median_s")
        c = med(("micro", op, "C cblas" if op == "matmul" else "C loop"), "median_s")
        if a and b:
            print(f"{op:8} nnlua/PyTorch time ratio {a / b:.3f}")
        if a and c:
            print(f"{op:8} nnlua/C time ratio {a / c:.3f}")

    st = {k[2]: [r["seconds"] for r in v] for k, v in groups.items() if k[0] == "startup"}
    if st:
        print("\n== start-up (median of runs) ==")
        for impl, v in st.items():
            print(f"{impl:32} {statistics.median(v) * 1e3:8.1f} ms")

    for bench in ("mlp", "cnn"):
        ks = [k for k in groups if k[0] == bench]
        if not ks:
            continue
        print(f"\n== {bench} (medians over epochs and runs) ==")
        print(f"{'impl':8} {'epoch s':>8} {'infer img/s':>12} {'test acc':>9} {'peak MB':>8} {'runs':>5}")
        res = {}
        for k in sorted(ks):
            rs = groups[k]
            epoch_s = statistics.median(r["train_s"] for r in rs)
            ips = statistics.median(r["infer_ips"] for r in rs if "infer_ips" in r)
            last = {}
            for r in rs:
                last[r.get("seed", 0)] = r  # final epoch of each run
            acc = statistics.mean(r["test_acc"] for r in last.values())
            mem = max(r.get("peak_rss_mb", 0) for r in rs)
            res[k[2]] = (epoch_s, ips)
            print(f"{k[2]:8} {epoch_s:8.3f} {ips:12.0f} {acc * 100 if acc <= 1 else acc:8.2f}% {mem:8.0f} {len(last):5d}")
        if "nnlua" in res and "pytorch" in res:
            print(f"epoch time ratio nnlua/PyTorch {res['nnlua'][0] / res['pytorch'][0]:.3f}; "
                  f"inference throughput ratio {res['nnlua'][1] / res['pytorch'][1]:.3f}")

    for bench, title, ops in (("captioning_step", "captioning: LSTM training step, course shapes", ("",)),
                              ("resnet", "resnet18 224x224 batch 8", ("infer", "train_step"))):
        if not any(k[0] == bench for k in groups):
            continue
        print(f"\n== {title} (median of per-run medians) ==")
        print(f"{'op':11} {'impl':8} {'median ms':>10} {'cpu ms':>8} {'runs':>5}")
        for op in ops:
            t = {}
            for impl in ("nnlua", "pytorch"):
                rs = groups.get((bench, op, impl), [])
                if not rs:
                    continue
                t[impl] = statistics.median(r["median_s"] for r in rs)
                cpu = [r["cpu_s"] for r in rs if "cpu_s" in r]
                cpu_ms = f"{statistics.median(cpu) * 1e3:8.1f}" if cpu else f"{'-':>8}"
                print(f"{op or 'step':11} {impl:8} {t[impl] * 1e3:10.1f} {cpu_ms} {len(rs):5d}")
            if len(t) == 2:
                print(f"{op or 'step':11} time ratio nnlua/PyTorch {t['nnlua'] / t['pytorch']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
