r"""Benchmark training on synthetic catalogs at N x the real one: seconds per epoch and peak memory, by scale.

  python scripts/bench_train_scale.py [--scales 10,100] [--samplers neighbor] [--epochs 1] \
      [--workdir /tmp/kg_bench] [--json out/bench_train_scale.json] [--plot out/bench_train_scale.png]

For each scale it makes (once) the synthetic catalog of `scripts/bench_build_graph.py` (bench/synthetic_catalog.py,
WORKDIR/data/xN), builds its embedded store with `scripts/build_graph.py`, then runs `scripts/train.py --split loo
--no-refit` in a child process for `--epochs` epochs with each sampler: "neighbor" = the neighbour-sampled path
(`train.sampler`, needs torch-sparse or pyg-lib) with a sampled softmax (`loss.num_negatives`), "full" = full-batch
propagation. Peak memory is the child's own (wait4's ru_maxrss); epoch seconds come from the model's
history.json (training plus the validation NDCG@10 on its fixed sample of 10,000 users).

Quality is meaningless on synthetic data; the point is that the run fits and how time and memory grow. The text
tower is off by default (`--variant fusion_no_text`): encoding 434k synthetic descriptions with the CPU text
encoder is a separate, one-off cost (`scripts/bench_text.py` gives its products/s; the vectors are cached).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.synthetic_catalog import RealShape, data_dir, generate_catalog, parse_scales  # noqa: E402

GiB = 2**30


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="10,100", help="comma-separated multiples of the real catalog")
    ap.add_argument("--samplers", default="neighbor", help="comma-separated: neighbor, full (default neighbor)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    ap.add_argument("--batch-size", type=int, default=4096, help="train.batch_size (default 4096)")
    ap.add_argument("--num-negatives", type=int, default=1024,
                    help="loss.num_negatives: sampled softmax over this many shared negatives (default 1024)")
    ap.add_argument("--num-neighbors", default="5,2", help="train.num_neighbors per layer, comma-separated (default 5,2)")
    ap.add_argument("--no-fused-adam", action="store_true",
                    help="torch's default Adam instead of the fused kernel (train.fused_adam)")
    ap.add_argument("--variant", default="fusion_no_text", help="train.py --variant ('' = the full model)")
    ap.add_argument("--max-minutes", type=float, default=120.0, help="train.max_minutes of each run (default 120)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/kg_bench"), help="data, stores and models go here")
    ap.add_argument("--real", type=Path, default=ROOT / "work" / "scientific",
                    help="directory with the real products.csv and interactions.csv (default work/scientific)")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    ap.add_argument("--plot", type=Path, help="write a PNG of epoch seconds and peak memory vs scale here")
    args = ap.parse_args(argv)
    args.scales = parse_scales(args.scales)
    args.samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    args.num_neighbors = [int(k) for k in args.num_neighbors.split(",")]
    return args


def run(cmd: list[str], log: Path) -> tuple[int, float, float]:
    """Run `cmd` with its output in `log`; (exit status, seconds, peak RSS GiB of the child)."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - t0, usage.ru_maxrss / 2**20


def store_for(args: argparse.Namespace, scale, shape: RealShape) -> tuple[Path, dict]:
    data = data_dir(args.workdir, scale)
    info = generate_catalog(shape, scale, data)
    store = args.workdir / f"train-store-x{scale}"
    if not (store / "CURRENT").exists():
        rc, secs, peak = run([sys.executable, "scripts/build_graph.py", "--products", str(data / "products.csv"),
                              "--interactions", str(data / "interactions.csv"), "--store", str(store), "--quiet"],
                             args.workdir / f"train-build-x{scale}.log")
        if rc:
            raise SystemExit(f"building the x{scale} store failed; see {args.workdir}/train-build-x{scale}.log")
        print(f"  store x{scale}: built in {secs:.0f}s (peak {peak:.2f} GiB)", flush=True)
    return store, info


def train(args: argparse.Namespace, scale, store: Path, sampler: str) -> dict:
    out = args.workdir / f"model-x{scale}-{sampler}"
    shutil.rmtree(out, ignore_errors=True)
    sets = {"train.epochs": args.epochs, "train.batch_size": args.batch_size, "train.sampler": sampler,
            "train.fused_adam": not args.no_fused_adam,
            "train.max_minutes": args.max_minutes, "loss.num_negatives": args.num_negatives,
            "train.num_neighbors": args.num_neighbors}
    # progress bars go to the log, which then shows the batch rate of a long epoch
    cmd = [sys.executable, "scripts/train.py", "--store", str(store), "--out", str(out), "--split", "loo",
           "--no-refit"]
    if args.variant:
        cmd += ["--variant", args.variant]
    for k, v in sets.items():
        cmd += ["--set", k, json.dumps(v)]
    log = args.workdir / f"train-x{scale}-{sampler}.log"
    rc, secs, peak = run(cmd, log)
    row = {"scale": scale, "sampler": sampler, "status": "ok" if rc == 0 else f"exit {rc}", "seconds": round(secs, 1),
           "peak_rss_gib": round(peak, 2), "settings": sets, "variant": args.variant, "log": str(log)}
    hist = out / "history.json"
    if rc == 0 and hist.exists():
        h = json.loads(hist.read_text())["history"]
        prev = 0.0
        row["epoch_seconds"] = []
        for r in h:
            row["epoch_seconds"].append(round(r["seconds"] - prev, 1))
            prev = r["seconds"]
        row["valid_ndcg@10"] = h[-1].get("valid_ndcg@10")
    else:
        row["tail"] = log.read_text()[-2000:]
    return row


def table(rows: list[dict]) -> str:
    out = ["| scale | products | users | interactions | sampler | epoch s | peak RSS GiB | run s (load, build inputs, "
           "train, save) | status |", "|---:|---:|---:|---:|:---|---:|---:|---:|:---|"]
    for r in rows:
        ep = r.get("epoch_seconds") or []
        out.append(f"| {r['scale']}x | {r['products']:,} | {r['users']:,} | {r['interactions']:,} | {r['sampler']} | "
                   f"{sum(ep) / len(ep):.1f} | {r['peak_rss_gib']:.2f} | {r['seconds']:.0f} | {r['status']} |"
                   if ep else f"| {r['scale']}x | {r['products']:,} | {r['users']:,} | {r['interactions']:,} | "
                   f"{r['sampler']} | - | {r['peak_rss_gib']:.2f} | {r['seconds']:.0f} | {r['status']} |")
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for sampler in sorted({r["sampler"] for r in rows}):
        ok = [r for r in rows if r["sampler"] == sampler and r.get("epoch_seconds")]
        if not ok:
            continue
        x = [r["interactions"] for r in ok]
        a.plot(x, [sum(r["epoch_seconds"]) / len(r["epoch_seconds"]) for r in ok], "o-", label=sampler)
        b.plot(x, [r["peak_rss_gib"] for r in ok], "o-", label=sampler)
    for ax, title, ylabel in ((a, "seconds per epoch", "s"), (b, "peak memory", "GiB")):
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("interactions"); ax.set_ylabel(ylabel)
        ax.set_title(title); ax.legend(); ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    shape = RealShape.from_files(args.real / "products.csv", args.real / "interactions.csv")
    rows = []
    for scale in args.scales:
        store, info = store_for(args, scale, shape)
        for sampler in args.samplers:
            print(f"  train x{scale} ({sampler}) ...", flush=True)
            row = {"products": info["products"], "users": info["users"], "interactions": info["interactions"],
                   **train(args, scale, store, sampler)}
            print(f"    {row['status']}: {row['seconds']:.0f}s, epochs {row.get('epoch_seconds')}, "
                  f"peak {row['peak_rss_gib']:.2f} GiB", flush=True)
            rows.append(row)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"rows": rows}, indent=2))
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"table": table(rows), "rows": rows}, indent=2))
        print(f"\nJSON: {args.json}")
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
