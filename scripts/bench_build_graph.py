"""Benchmark `scripts/build_graph.py`: build time and peak memory on the real catalog and synthetic ones at N x its size.

  python scripts/bench_build_graph.py [--scales 1,10,100,1000] [--workdir /tmp/kg_bench] \
      [--json bench.json] [--plot bench.png] [--timestamps] [--min-available-gib 1.5]

Scale 1 is the real data (work/scientific, from scripts/convert_dataset.py); larger scales are synthetic
catalogs shaped like it (bench/synthetic_catalog.py), generated once into WORKDIR/data and reused; generation
is not timed. Each build runs in its own process into a fresh store, so its peak RSS (from wait4) is its own;
a second identical build (which must change nothing) is timed too. A watchdog kills a build when the machine's
available memory falls under --min-available-gib and reports the stage it had reached (the build prints
stage markers with KG_STAGE_LOG=1); larger scales are then skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.synthetic_catalog import RealShape, generate_catalog  # noqa: E402

GiB = 2**30


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="1,10,100,1000", help="comma-separated multiples of the real catalog")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/kg_bench"),
                    help="synthetic data and stores go here (default /tmp/kg_bench; never inside the repo)")
    ap.add_argument("--real", type=Path, default=ROOT / "work" / "scientific",
                    help="directory with the real products.csv and interactions.csv (default work/scientific)")
    ap.add_argument("--json", type=Path, help="write all results as JSON here")
    ap.add_argument("--plot", type=Path, help="write a PNG of time and memory vs scale (log-log) here")
    ap.add_argument("--timestamps", action="store_true", help="give synthetic interactions ISO timestamps")
    ap.add_argument("--min-available-gib", type=float, default=1.5,
                    help="kill a build when available memory falls below this (default 1.5)")
    ap.add_argument("--no-rebuild", action="store_true", help="skip the second (no-change) build")
    ap.add_argument("--keep-stores", action="store_true", help="keep the built stores (default: delete)")
    args = ap.parse_args(argv)
    args.scales = [float(s) if "." in s else int(s) for s in args.scales.split(",") if s.strip()]
    wd = args.workdir.resolve()
    if wd == ROOT or ROOT in wd.parents:
        ap.error(f"--workdir {wd} is inside the repository; use a directory outside it")
    return args


def _set_oom_first() -> None:
    """In the child: ask the kernel to kill this process first if memory runs out despite the watchdog."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass


def _tree_rss(p: psutil.Process) -> int:
    try:
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def _stages(stderr: str) -> list[dict]:
    """Parse `kg-stage: NAME [t=1.23s peak=0.45GiB]` markers."""
    out = []
    for line in stderr.replace("\r", "\n").splitlines():
        if line.startswith("kg-stage: ") and "[t=" in line:
            name, rest = line[len("kg-stage: "):].rsplit(" [t=", 1)
            t, peak = rest.rstrip("]").split("s peak=")
            out.append({"stage": name, "t_s": float(t), "peak_gib": float(peak.rstrip("GiB"))})
    return out


def run_build(products: Path, interactions: Path, store: Path, log: Path, min_available: float) -> dict:
    """Run one build in a child process under a memory watchdog -> timing, peak RSS, stages and outcome."""
    summary = store.parent / (store.name + ".summary.json")
    summary.unlink(missing_ok=True)
    cmd = [sys.executable, str(ROOT / "scripts" / "build_graph.py"), "--products", str(products),
           "--interactions", str(interactions), "--store", str(store), "--json", str(summary), "--quiet"]
    env = {**os.environ, "KG_STAGE_LOG": "1"}
    with open(log, "w") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, preexec_fn=_set_oom_first)
        proc = psutil.Process(child.pid)
        polled, min_avail, killed = 0, psutil.virtual_memory().available, False
        while True:
            pid, status, ru = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            avail = psutil.virtual_memory().available
            min_avail = min(min_avail, avail)
            polled = max(polled, _tree_rss(proc))
            if avail < min_available * GiB and not killed:
                killed = True
                os.kill(child.pid, signal.SIGKILL)
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = log.read_text(errors="replace")
    stages = _stages(stderr)
    last = stages[-1]["stage"] if stages else "start-up"
    res = {"seconds": round(seconds, 3), "peak_rss_gib": round(max(ru.ru_maxrss * 1024, polled) / GiB, 3),
           "min_available_gib": round(min_avail / GiB, 2), "exit_code": child.returncode, "stages": stages}
    if killed or child.returncode == -signal.SIGKILL:
        res["status"] = f"stopped: out of memory at stage {last!r}"
    elif child.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or [""]
        res["status"] = f"failed (exit {child.returncode}) at stage {last!r}: {tail[0][:200]}"
    else:
        res["status"] = "ok"
        res["summary"] = json.loads(summary.read_text())
    return res


def dataset(args: argparse.Namespace, scale: float, shape: RealShape | None) -> tuple[Path, Path, dict]:
    if scale == 1 and not args.timestamps:
        p, i = args.real / "products.csv", args.real / "interactions.csv"
        return p, i, {"source": "real", "products": shape.num_products, "users": shape.num_users,
                      "interactions": int(shape.history_lens.sum())}
    out = args.workdir / "data" / f"x{scale}{'-ts' if args.timestamps else ''}"
    t0 = time.perf_counter()
    info = generate_catalog(shape, scale, out, timestamps=args.timestamps)
    print(f"  data x{scale}: {info['products']:,} products, {info['interactions']:,} interactions "
          f"({sum(info['bytes'].values()) / GiB:.2f} GiB of CSV, ready in {time.perf_counter() - t0:.0f}s)",
          flush=True)
    return out / "products.csv", out / "interactions.csv", {"source": "synthetic", **info}


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


def table(rows: list[dict]) -> str:
    head = ["scale", "products", "users", "interactions", "build s", "peak RSS GiB", "products/s",
            "interactions/s", "time growth", "memory growth", "re-build s", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head[:-1]) + "|:---|"]
    prev = None
    for r in rows:
        b, rb = r.get("build") or {}, r.get("rebuild") or {}
        ok = b.get("status") == "ok"
        secs = b.get("seconds") if ok else None
        mem = b.get("peak_rss_gib") if b else None
        pt = prev["build"]["seconds"] if prev else None
        pm = prev["build"]["peak_rss_gib"] if prev else None
        cells = [f"{r['scale']}x", f"{r['products']:,}", f"{r['users']:,}", f"{r['interactions']:,}",
                 f"{secs:.1f}" if secs else "-", (f"{mem:.2f}" if ok else f">{mem:.2f}") if b else "-",
                 f"{r['products'] / secs:,.0f}" if secs else "-", f"{r['interactions'] / secs:,.0f}" if secs else "-",
                 ratio(secs, pt), ratio(mem if ok else None, pm),
                 f"{rb['seconds']:.1f}" if rb.get("status") == "ok" else "-",
                 b.get("status", "not run") + (f"; re-build {rb['status']}" if rb and rb.get("status") != "ok" else "")
                 + ("; re-build changed something!" if rb.get("changed") else "")]
        lines.append("| " + " | ".join(cells) + " |")
        prev = r if ok else None
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if (r.get("build") or {}).get("status") == "ok"]
    if not ok:
        return
    x = [r["interactions"] for r in ok]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.loglog(x, [r["build"]["seconds"] for r in ok], "o-", label="build")
    rb = [r for r in ok if (r.get("rebuild") or {}).get("status") == "ok"]
    if rb:
        a.loglog([r["interactions"] for r in rb], [r["rebuild"]["seconds"] for r in rb], "s--", label="re-build")
    a.loglog(x, [ok[0]["build"]["seconds"] * v / x[0] for v in x], ":", color="grey", label="linear")
    a.set(xlabel="interactions", ylabel="seconds", title="build time")
    a.legend()
    b.loglog(x, [r["build"]["peak_rss_gib"] for r in ok], "o-", label="peak RSS")
    b.axhline(psutil.virtual_memory().total / GiB, color="red", ls=":", label="machine RAM")
    b.set(xlabel="interactions", ylabel="GiB", title="peak memory")
    b.legend()
    for r in rows:
        if r.get("build") and r["build"]["status"] != "ok":
            b.annotate(f"{r['scale']}x: {r['build']['status']}", (0.02, 0.02), xycoords="axes fraction", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    real_p, real_i = args.real / "products.csv", args.real / "interactions.csv"
    if not (real_p.exists() and real_i.exists()):
        print(f"error: {real_p} / {real_i} not found; make them with scripts/convert_dataset.py amazon-json "
              "(see the README)", file=sys.stderr)
        return 2
    shape = RealShape.from_files(real_p, real_i)
    vm = psutil.virtual_memory()
    machine = {"cpus": os.cpu_count(), "ram_gib": round(vm.total / GiB, 1),
               "available_gib_at_start": round(vm.available / GiB, 1), "python": sys.version.split()[0]}
    print(f"machine: {machine}", flush=True)
    rows: list[dict] = []
    stop = None
    for scale in args.scales:
        if stop:
            rows.append({"scale": scale, "products": round(shape.num_products * scale),
                         "users": round(shape.num_users * scale),
                         "interactions": round(int(shape.history_lens.sum()) * scale),
                         "build": {"status": f"not run: {stop}"}})
            continue
        products, interactions, info = dataset(args, scale, shape)
        row = {"scale": scale, "products": info["products"], "users": info["users"],
               "interactions": info["interactions"], "data": info}
        store = args.workdir / f"store-x{scale}"
        shutil.rmtree(store, ignore_errors=True)
        print(f"  build x{scale} ...", flush=True)
        row["build"] = run_build(products, interactions, store, args.workdir / f"build-x{scale}.log",
                                 args.min_available_gib)
        print(f"    {row['build']['status']}: {row['build']['seconds']:.1f}s, "
              f"peak {row['build']['peak_rss_gib']:.2f} GiB", flush=True)
        if row["build"]["status"] == "ok" and not args.no_rebuild:
            rb = run_build(products, interactions, store, args.workdir / f"rebuild-x{scale}.log",
                           args.min_available_gib)
            if rb["status"] == "ok":
                rb["changed"] = any(rb["summary"]["changes"].values())
            row["rebuild"] = rb
            print(f"    re-build {rb['status']}: {rb['seconds']:.1f}s, peak {rb['peak_rss_gib']:.2f} GiB, "
                  f"changes {rb.get('summary', {}).get('changes')}", flush=True)
        if row["build"]["status"] != "ok":
            stop = f"x{scale} {row['build']['status']}"
        if not args.keep_stores:
            shutil.rmtree(store, ignore_errors=True)
        rows.append(row)
        if args.json:  # after every scale, so a long run leaves its results behind
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "table": table(rows), "rows": rows}, indent=2))
        print(f"\nJSON: {args.json}")
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
