r"""Benchmark `scripts/build_graph.py`: build time and peak memory on the real catalog and synthetic ones at N x its size.

  python scripts/bench_build_graph.py [--scales 1,10,100,1000] [--workdir /tmp/kg_bench] \
      [--json bench.json] [--plot bench.png] [--timestamps] [--min-available-gib 1.5]

Scale 1 is the real data (work/scientific, from scripts/convert_dataset.py); larger scales are synthetic
catalogs shaped like it (bench/synthetic_catalog.py), generated once into WORKDIR/data and reused; generation
is not timed. Each build runs in its own process into a fresh store, so its peak RSS (from wait4) is its own;
a second identical build (which must change nothing) is timed too. A watchdog kills a build when the machine's
available memory falls under --min-available-gib and reports the stage it had reached (the build prints
stage markers with KG_STAGE_LOG=1); larger scales are then skipped.

With --neo4j it measures loading into a live Neo4j server instead, beside the embedded build of the same data:

  python scripts/bench_build_graph.py --neo4j [--datasets scientific,beauty,10,100] [--bulk 100] \
      [--verify scientific] [--neo4j-heap 2g --neo4j-pagecache 2g] [--json docs/bench_build_graph_neo4j.json] \
      [--plot docs/bench_build_graph_neo4j.png] [--neo4j-uri bolt://... --neo4j-password ...]

Datasets: `scientific` (the --real files), `beauty` (../shared/data/amazon-beauty-kg, converted with
scripts/convert_dataset.py's amazon-kg converter into WORKDIR/data/beauty) and numbers (synthetic catalogs at
that multiple of the real one). For each: the embedded build (as above, the store kept), then the graph is read
from that store and written with `Neo4jStore.write` into an empty database (nodes/s and relationships/s from the
time of each phase's statements, peak server memory from the server process's VmHWM). Without --neo4j-uri the
benchmark starts its own server for each dataset (kg.neo4j_server: a fresh home under /tmp, free loopback ports,
a random password), so each peak is that dataset's own; with --neo4j-uri it empties that database before each
dataset (Neo4jStore.clear) and cannot see the server's memory. Datasets in --bulk are then imported again with
scripts/bulk_import_neo4j.py (neo4j-admin database import full; needs the server this benchmark started).
The 1-minute load average is recorded before and after each load: the machine may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.synthetic_catalog import RealShape, data_dir, generate_catalog, parse_scale, parse_scales  # noqa: E402
from kg.neo4j_store import add_connection_arguments  # noqa: E402  (neo4j itself is imported when used)

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
    n = add_connection_arguments(ap, "benchmark loading into Neo4j (see above) instead of the embedded build alone")
    n.add_argument("--datasets", default="scientific,beauty,10,100",
                   help="with --neo4j: scientific, beauty and/or synthetic scales (default scientific,beauty,10,100)")
    n.add_argument("--beauty", type=Path, default=ROOT.parent / "shared" / "data" / "amazon-beauty-kg",
                   help="the amazon-beauty-kg folder (default ../shared/data/amazon-beauty-kg)")
    n.add_argument("--bulk", default="100", help="datasets also loaded with the bulk import (default 100; '' none)")
    n.add_argument("--verify", default="scientific",
                   help="datasets read back with Neo4jStore.load() and compared with the graph (default scientific)")
    n.add_argument("--rewrite", default="", help="datasets written a second time, which must create nothing")
    n.add_argument("--batch-size", type=int, default=5000, help="Neo4jStore batch size (default 5000)")
    n.add_argument("--no-warmup", action="store_true",
                   help="time the first write of a fresh server (default: it first writes and clears the "
                        "scientific graph, so that the JVM has compiled the write path)")
    n.add_argument("--neo4j-heap", default="2g", help="heap of the server it starts (default 2g)")
    n.add_argument("--neo4j-pagecache", default="2g", help="page cache of the server it starts (default 2g)")
    args = ap.parse_args(argv)
    args.scales = parse_scales(args.scales)
    for name in ("datasets", "bulk", "verify", "rewrite"):
        setattr(args, name, [x.strip() for x in getattr(args, name).split(",") if x.strip()])
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
    """Parse `kg-stage: NAME [t=1.23s peak=0.45GiB rss=0.40GiB]` markers (rss: resident at that point)."""
    out = []
    for line in stderr.replace("\r", "\n").splitlines():
        if line.startswith("kg-stage: ") and "[t=" in line:
            name, rest = line[len("kg-stage: "):].rsplit(" [t=", 1)
            t, mem = rest.rstrip("]").split("s peak=")
            peak, _, rss = mem.partition(" rss=")
            out.append({"stage": name, "t_s": float(t), "peak_gib": float(peak.removesuffix("GiB")),
                        **({"rss_gib": float(rss.removesuffix("GiB"))} if rss else {})})
    return out


def run_child(cmd: list[str], log: Path, min_available: float, env: dict | None = None) -> dict:
    """Run `cmd` under the memory watchdog -> seconds, peak RSS (wait4: the child and the children it waited
    for; polled: its whole tree), stages, exit code and status."""
    with open(log, "w") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT, env=env or dict(os.environ),
                                 preexec_fn=_set_oom_first)
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
    return res


def run_build(products: Path, interactions: Path, store: Path, log: Path, min_available: float,
              relations: Path | None = None) -> dict:
    """Run one build in a child process under a memory watchdog -> timing, peak RSS, stages and outcome."""
    summary = store.parent / (store.name + ".summary.json")
    summary.unlink(missing_ok=True)
    cmd = [sys.executable, str(ROOT / "scripts" / "build_graph.py"), "--products", str(products),
           "--interactions", str(interactions), "--store", str(store), "--json", str(summary), "--quiet"]
    if relations is not None:
        cmd += ["--relations", str(relations)]
    res = run_child(cmd, log, min_available, {**os.environ, "KG_STAGE_LOG": "1"})
    if res["status"] == "ok":
        res["summary"] = json.loads(summary.read_text())
    return res


def dataset(args: argparse.Namespace, scale: float, shape: RealShape | None) -> tuple[Path, Path, dict]:
    if scale == 1 and not args.timestamps:
        p, i = args.real / "products.csv", args.real / "interactions.csv"
        return p, i, {"source": "real", "products": shape.num_products, "users": shape.num_users,
                      "interactions": int(shape.history_lens.sum())}
    out = data_dir(args.workdir, scale, args.timestamps)
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


# --- loading into Neo4j (--neo4j) -------------------------------------------------------------------------
def _load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def neo4j_dataset(args: argparse.Namespace, name: str, shape: RealShape) -> tuple[dict[str, Path], dict]:
    """The input files of a --datasets entry and what they hold."""
    if name == "scientific":
        return ({"products": args.real / "products.csv", "interactions": args.real / "interactions.csv"},
                {"source": "real (amazon-scientific)"})
    if name == "beauty":
        from kg.convert import convert_amazon_kg
        out = args.workdir / "data" / "beauty"
        if not (out / "relations.csv").exists():  # what `scripts/convert_dataset.py amazon-kg` writes
            convert_amazon_kg(args.beauty, out)
        return ({"products": out / "products.csv", "interactions": out / "interactions.csv",
                 "relations": out / "relations.csv"}, {"source": "real (amazon-beauty-kg)"})
    scale = parse_scale(name)
    products, interactions, info = dataset(args, scale, shape)
    return {"products": products, "interactions": interactions}, info


def _phase_timer(store) -> dict[str, float]:
    """Seconds spent in the node and in the relationship statements of `store`'s writes (wraps this
    instance's `_run`; the rows of the next batch are built meanwhile, so these are the phases' wall times)."""
    from kg import cypher
    from kg.schema import NODE_LABELS, REL_TYPES
    kinds = {**{f(label): "nodes" for label in NODE_LABELS for f in (cypher.create_nodes, cypher.upsert_nodes)},
             **{f(t): "relationships" for t in REL_TYPES
                for f in (cypher.create_relationships, cypher.merge_relationships)}}
    spent = {"nodes": 0.0, "relationships": 0.0, "other": 0.0}
    original = store._run

    def timed(query, params=None, **kw):
        t0 = time.perf_counter()
        try:
            return original(query, params, **kw)
        finally:
            spent[kinds.get(query, "other")] += time.perf_counter() - t0

    store._run = timed
    return spent


def _gib(kib: int | None) -> float | None:
    return round(kib / 2**20, 3) if kib else None


def neo4j_load(store, graph, name: str, args: argparse.Namespace, pid: int | None) -> dict:
    """Write `graph` into the (empty) database of `store`; rates, counters and server memory."""
    from kg import assert_graphs_equal
    from kg.neo4j_server import memory_kib
    nodes = sum(len(t) for t in graph.nodes.values())
    rels = sum(len(t) for t in graph.edges.values())
    spent = _phase_timer(store)
    before = memory_kib(pid) if pid else {}
    res: dict = {"load_avg_before": _load_avg()}
    t0 = time.perf_counter()
    store.write(graph, info={"benchmark": name})
    secs = time.perf_counter() - t0
    after = memory_kib(pid) if pid else {}
    c = store.last_counters
    res.update(seconds=round(secs, 3), node_s=round(spent["nodes"], 3), relationship_s=round(spent["relationships"], 3),
               nodes_per_s=round(nodes / spent["nodes"]) if spent["nodes"] else None,
               relationships_per_s=round(rels / spent["relationships"]) if spent["relationships"] else None,
               rows_per_s=round((nodes + rels) / secs), load_avg_after=_load_avg(),
               counters={"nodes_created": c.nodes_created, "relationships_created": c.relationships_created,
                         "statements": c.statements},
               server_rss_before_gib=_gib(before.get("rss")), server_peak_gib=_gib(after.get("peak")),
               server_rss_after_gib=_gib(after.get("rss")))
    res["status"] = ("ok" if (c.nodes_created, c.relationships_created) == (nodes, rels)
                     else f"counters differ: {c.nodes_created} nodes, {c.relationships_created} relationships created")
    print(f"    Neo4j load {res['status']}: {secs:.1f}s, {res['nodes_per_s'] or 0:,} nodes/s, "
          f"{res['relationships_per_s'] or 0:,} relationships/s, server peak {res['server_peak_gib']} GiB "
          f"(load {res['load_avg_before']} -> {res['load_avg_after']})", flush=True)
    if name in args.rewrite:
        t0 = time.perf_counter()
        store.write(graph, info={"benchmark": name})
        c = store.last_counters
        res["rewrite"] = {"seconds": round(time.perf_counter() - t0, 3), "nodes_created": c.nodes_created,
                          "relationships_created": c.relationships_created}
        print(f"    second write: {res['rewrite']}", flush=True)
    if name in args.verify:
        t0 = time.perf_counter()
        assert_graphs_equal(store.load(), graph)
        res["verified_s"] = round(time.perf_counter() - t0, 3)
        print(f"    Neo4jStore.load() equals the graph ({res['verified_s']:.1f}s)", flush=True)
    return res


def bulk_load(args: argparse.Namespace, store_dir: Path, server, password: str, graph, name: str) -> dict:
    """scripts/bulk_import_neo4j.py into the server's home (stopped and started by the script), in a child
    process under the watchdog; then the counts (and with --verify the whole graph) are checked."""
    from kg import assert_graphs_equal, neo4j_server as ns
    from kg.neo4j_store import Neo4jConfig, Neo4jStore
    cfg = server.config
    report_path = args.workdir / f"bulk-{name}.json"
    report_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(ROOT / "scripts" / "bulk_import_neo4j.py"), "--store", str(store_dir),
           "--home", str(cfg.home), "--bolt-port", str(cfg.bolt_port), "--http-port", str(cfg.http_port),
           "--heap", cfg.heap, "--pagecache", cfg.pagecache, "--json", str(report_path)]
    print(f"  bulk import {name} ...", flush=True)
    res = run_child(cmd, args.workdir / f"bulk-{name}.log", args.min_available_gib,
                    {**os.environ, "NEO4J_PASSWORD": password})
    res["load_avg_after"] = _load_avg()
    if res["status"] != "ok":
        print(f"    bulk import {res['status']}", flush=True)
        return res
    res["report"] = json.loads(report_path.read_text())
    rows = res["report"]["nodes"] + res["report"]["relationships"]
    res["import_rows_per_s"] = round(rows / res["report"]["import_s"])
    res["import_peak_gib"] = _importer_peak_gib(res["report"])
    res["script_peak_gib"] = _gib(res["report"].get("script_peak_rss_kib"))
    pid = ns.pid_of(cfg.home)
    res["server_rss_after_start_gib"] = _gib(ns.memory_kib(pid).get("rss")) if pid else None
    with Neo4jStore(Neo4jConfig(uri=cfg.bolt_uri, user="neo4j", password=password), show_progress=False) as st:
        q = "MATCH (n) RETURN count(n) AS n"
        found = st.connect().execute_query(q).records[0]["n"]
        want = sum(len(t) for t in graph.nodes.values()) + 1  # + KGMeta
        res["nodes_found"] = found
        if found != want:
            res["status"] = f"imported {found} nodes, expected {want}"
        if name in args.verify:
            t0 = time.perf_counter()
            assert_graphs_equal(st.load(), graph)
            res["verified_s"] = round(time.perf_counter() - t0, 3)
    r = res["report"]
    print(f"    bulk import {res['status']}: CSV {r['csv_s']:.1f}s, import {r['import_s']:.1f}s "
          f"({res['import_rows_per_s']:,} rows/s), start {r.get('start_s', 0):.1f}s, constraints "
          f"{r.get('schema_s', 0):.1f}s; total {r['total_s']:.1f}s; importer peak {res['import_peak_gib']} GiB",
          flush=True)
    return res


def _importer_peak_gib(report: dict) -> float | None:
    """The importer's peak RSS (VmHWM polled by scripts/bulk_import_neo4j.py); for a report without it,
    the peak the importer itself prints ("Peak memory usage: 1.045GiB")."""
    if report.get("importer_peak_rss_kib"):
        return _gib(report["importer_peak_rss_kib"])
    m = re.search(r"Peak memory usage: ([0-9.]+)\s*([KMG])iB", report.get("import_log_tail", ""))
    return round(float(m[1]) / {"K": 2**20, "M": 2**10, "G": 1}[m[2]], 3) if m else None


def neo4j_table(rows: list[dict]) -> str:
    head = ["dataset", "nodes", "relationships", "embedded build s", "embedded peak RSS GiB", "embedded rows/s",
            "Neo4j load s", "nodes/s", "relationships/s", "Neo4j rows/s", "server peak GiB", "load avg"]
    lines = ["| " + " | ".join(head) + " |", "|:---|" + "|".join("---:" for _ in head[1:-1]) + "|:---|"]
    for r in rows:
        b, n = r.get("build") or {}, r.get("neo4j") or {}
        ok = n.get("status") == "ok"
        rows_n = (r.get("nodes") or 0) + (r.get("relationships") or 0)
        cells = [r["dataset"], f"{r.get('nodes', 0):,}", f"{r.get('relationships', 0):,}",
                 f"{b['seconds']:.1f}" if b.get("status") == "ok" else b.get("status", "-"),
                 f"{b['peak_rss_gib']:.2f}" if b.get("status") == "ok" else "-",
                 f"{rows_n / b['seconds']:,.0f}" if b.get("status") == "ok" else "-",
                 f"{n['seconds']:.1f}" if ok else n.get("status", "-"),
                 f"{n['nodes_per_s']:,}" if ok and n.get("nodes_per_s") else "-",
                 f"{n['relationships_per_s']:,}" if ok and n.get("relationships_per_s") else "-",
                 f"{n['rows_per_s']:,}" if ok else "-",
                 f"{n['server_peak_gib']:.2f}" if ok and n.get("server_peak_gib") else "-",
                 f"{n['load_avg_before']}-{n['load_avg_after']}" if n.get("load_avg_before") is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bulk_table(rows: list[dict]) -> str:
    head = ["dataset", "nodes + relationships", "CSV s", "import s", "import rows/s", "start + constraints s",
            "total s", "importer peak GiB", "bulk script peak GiB", "transactional load s / total s"]
    lines = ["| " + " | ".join(head) + " |", "|:---|" + "|".join("---:" for _ in head[1:]) + "|"]
    for r in rows:
        k = r.get("bulk")
        if not k:
            continue
        if k.get("status") != "ok":
            lines.append(f"| {r['dataset']} | " + " | ".join(["-"] * (len(head) - 2)) + f" | {k.get('status')} |")
            continue
        rep, n = k["report"], r.get("neo4j") or {}
        speed = f"{n['seconds'] / rep['total_s']:.1f}x" if n.get("status") == "ok" else "-"
        lines.append("| " + " | ".join([
            r["dataset"], f"{rep['nodes'] + rep['relationships']:,}", f"{rep['csv_s']:.1f}", f"{rep['import_s']:.1f}",
            f"{k['import_rows_per_s']:,}", f"{rep.get('start_s', 0) + rep.get('schema_s', 0):.1f}",
            f"{rep['total_s']:.1f}", f"{_importer_peak_gib(rep) or 0:.2f}",
            f"{(rep.get('script_peak_rss_kib') or 0) / 2**20:.2f}", speed]) + " |")
    return "\n".join(lines)


def neo4j_plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    ok = [r for r in rows if (r.get("neo4j") or {}).get("status") == "ok"]
    if not ok:
        return
    names = [r["dataset"] for r in ok]
    x = np.arange(len(ok))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [("embedded build (rows/s)", [(r["nodes"] + r["relationships"]) / r["build"]["seconds"] for r in ok]),
              ("Neo4j nodes/s", [r["neo4j"]["nodes_per_s"] or 0 for r in ok]),
              ("Neo4j relationships/s", [r["neo4j"]["relationships_per_s"] or 0 for r in ok]),
              ("bulk import (rows/s)", [(r.get("bulk") or {}).get("import_rows_per_s") or 0 for r in ok])]
    w = 0.2
    for i, (label, vals) in enumerate(series):
        a.bar(x + (i - 1.5) * w, vals, w, label=label)
    a.set_yscale("log")
    a.axhline(50_000, color="red", ls=":", lw=1, label="target 50k relationships/s")
    a.set(xticks=x, xticklabels=names, ylabel="per second", title="load speed")
    a.legend(fontsize=7)
    mem = [("embedded build peak RSS", [r["build"]["peak_rss_gib"] for r in ok]),
           ("Neo4j server peak (VmHWM)", [r["neo4j"]["server_peak_gib"] or 0 for r in ok]),
           ("importer peak RSS", [_importer_peak_gib((r.get("bulk") or {}).get("report") or {}) or 0 for r in ok])]
    for i, (label, vals) in enumerate(mem):
        b.bar(x + (i - 1) * 0.27, vals, 0.27, label=label)
    b.set(xticks=x, xticklabels=names, ylabel="GiB", title="peak memory")
    b.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main_neo4j(args: argparse.Namespace) -> int:
    import secrets
    import socket
    import tempfile

    from kg import EmbeddedStore, neo4j_server as ns
    from kg.neo4j_store import Neo4jConfig, Neo4jStore, config_from_args

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    args.workdir.mkdir(parents=True, exist_ok=True)
    real_p, real_i = args.real / "products.csv", args.real / "interactions.csv"
    if not (real_p.exists() and real_i.exists()):
        print(f"error: {real_p} / {real_i} not found; make them with scripts/convert_dataset.py amazon-json "
              "(see the README)", file=sys.stderr)
        return 2
    shape = RealShape.from_files(real_p, real_i)
    own = not args.neo4j_uri
    vm = psutil.virtual_memory()
    import neo4j
    from neo4j._codec.packstream.v1 import _rust_pack
    machine = {"cpus": os.cpu_count(), "ram_gib": round(vm.total / GiB, 1),
               "available_gib_at_start": round(vm.available / GiB, 1), "python": sys.version.split()[0],
               "neo4j_driver": neo4j.__version__, "driver_rust_extension": _rust_pack is not None,
               "server": (f"Neo4j {ns.NEO4J_VERSION} started per dataset, heap {args.neo4j_heap}, page cache "
                          f"{args.neo4j_pagecache}" if own else f"external {args.neo4j_uri}"),
               "batch_size": args.batch_size, "load_avg_at_start": _load_avg(),
               "load_note": "1-minute load average (os.getloadavg); the benchmark itself counts about 1-2"}
    print(f"machine: {machine}", flush=True)
    command = "python scripts/bench_build_graph.py " + " ".join(sys.argv[1:])
    rows: list[dict] = []
    warm: list = []

    def warmup_graph():
        if not warm:
            from kg import KnowledgeGraph, merge_files
            g = KnowledgeGraph()
            merge_files(g, products=real_p, interactions=real_i, show_progress=False)
            warm.append(g)
        return warm[0]

    def save(final: bool = False) -> None:
        if args.json:
            out = {"command": command, "machine": machine, "rows": rows}
            if final:
                out.update(table=neo4j_table(rows), bulk_table=bulk_table(rows))
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=2, default=str))

    for name in args.datasets:
        files, info = neo4j_dataset(args, name, shape)
        row: dict = {"dataset": name, "data": info}
        rows.append(row)
        store_dir = args.workdir / f"store-neo4j-{name}"
        shutil.rmtree(store_dir, ignore_errors=True)
        print(f"  embedded build {name} ...", flush=True)
        row["build"] = run_build(files["products"], files["interactions"], store_dir,
                                 args.workdir / f"build-neo4j-{name}.log", args.min_available_gib,
                                 relations=files.get("relations"))
        print(f"    {row['build']['status']}: {row['build']['seconds']:.1f}s, "
              f"peak {row['build']['peak_rss_gib']:.2f} GiB", flush=True)
        if row["build"]["status"] != "ok":
            save()
            continue
        graph = EmbeddedStore(store_dir).load()
        row["nodes"] = sum(len(t) for t in graph.nodes.values())
        row["relationships"] = sum(len(t) for t in graph.edges.values())
        row["counts"] = graph.counts()
        server = home = None
        password = secrets.token_urlsafe(18)
        try:
            if own:
                home = Path(tempfile.mkdtemp(prefix=f"kgrec-bench-neo4j-{name}-", dir="/tmp"))
                server = ns.start(ns.ServerConfig(home=home, password=password, bolt_port=free_port(),
                                                  http_port=free_port(), heap=args.neo4j_heap,
                                                  pagecache=args.neo4j_pagecache))
                row["server_startup_s"] = round(server.startup_s, 2)
                config = Neo4jConfig(uri=server.bolt_uri, user="neo4j", password=password,
                                     batch_size=args.batch_size)
            else:
                config = config_from_args(args, batch_size=args.batch_size)
            print(f"  Neo4j load {name}: {row['nodes']:,} nodes, {row['relationships']:,} relationships ...",
                  flush=True)
            with Neo4jStore(config, show_progress=False) as store:
                if not args.no_warmup:
                    t0 = time.perf_counter()
                    store.write(warmup_graph())
                    store.clear()
                    row["warmup_s"] = round(time.perf_counter() - t0, 2)
                    print(f"    warm-up (write and clear the scientific graph): {row['warmup_s']:.1f}s", flush=True)
                elif not own:
                    row["cleared_nodes"] = store.clear()  # empty between datasets
                row["neo4j"] = neo4j_load(store, graph, name, args, server.pid if server else None)
            if name in args.bulk:
                if own:
                    row["bulk"] = bulk_load(args, store_dir, server, password, graph, name)
                else:
                    row["bulk"] = {"status": "skipped: the bulk import needs the server this benchmark starts "
                                             "(it stops it and replaces its database)"}
        except Exception as e:  # noqa: BLE001  (a failed dataset is reported, the others still run)
            row.setdefault("neo4j", {})["status"] = f"failed: {type(e).__name__}: {str(e)[:300]}"
            print(f"    {row['neo4j']['status']}", flush=True)
        finally:
            if home is not None:
                ns.stop(home)
                shutil.rmtree(home, ignore_errors=True)
        del graph
        if not args.keep_stores:
            shutil.rmtree(store_dir, ignore_errors=True)
        save()
    machine["load_avg_at_end"] = _load_avg()
    print()
    print(neo4j_table(rows))
    if any(r.get("bulk") for r in rows):
        print()
        print(bulk_table(rows))
    save(final=True)
    if args.json:
        print(f"\nJSON: {args.json}")
    if args.plot:
        neo4j_plot(rows, args.plot)
        print(f"plot: {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.neo4j:
        return main_neo4j(args)
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
