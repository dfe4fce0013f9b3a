"""Startup time and memory of the local Neo4j server (kg.neo4j_server): fresh homes and restarts.

  python scripts/bench_neo4j_server.py [--runs 3] [--heap 1g] [--pagecache 512m] [--no-gds] [--json out.json]

Each run starts a server in a fresh home (first start: the password is set, the system and neo4j
databases are created), stops it, starts it again on the same home (a restart), and records the seconds
until Bolt answered and the server's resident memory (VmRSS) right after, and its peak (VmHWM). The load
average is printed beside the figures: other work on the machine slows a start. `--no-gds` starts the
server without Graph Data Science (on by default), to see what GDS costs.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg import neo4j_server as ns  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--heap", default="1g")
    ap.add_argument("--pagecache", default="512m")
    ap.add_argument("--gds", action=argparse.BooleanOptionalAction, default=True,
                    help="with Graph Data Science (default; --no-gds: without)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    cp = ns.resolve_classpath()
    rows = []
    for run in range(args.runs):
        home = Path(tempfile.mkdtemp(prefix="kgrec-bench-neo4j-"))
        config = ns.ServerConfig(home=home, password=secrets.token_urlsafe(12), bolt_port=_port(),
                                 http_port=_port(), heap=args.heap, pagecache=args.pagecache, gds=args.gds)
        try:
            for kind in ("first start", "restart"):
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                server = ns.start(config, classpath=cp)
                wall = time.perf_counter() - t0  # includes the password step on a first start
                time.sleep(2)
                mem = ns.memory_kib(server.pid)
                rows.append({"run": run, "kind": kind, "startup_s": round(wall, 2), "bolt_s": round(server.startup_s, 2),
                             "rss_mib": round(mem["rss"] / 1024), "peak_mib": round(mem["peak"] / 1024),
                             "load_avg_1m": round(load, 2)})
                print(json.dumps(rows[-1]), flush=True)
                ns.stop(home)
        finally:
            ns.stop(home)
            shutil.rmtree(home, ignore_errors=True)
    print(f"\nNeo4j {ns.NEO4J_VERSION}" + (f" with GDS {ns.GDS_VERSION}" if args.gds else " without GDS")
          + f", heap {args.heap}, page cache {args.pagecache}, {os.cpu_count()} cores")
    print(f"{'':12} {'start s (median)':>17} {'RSS MiB':>8} {'peak MiB':>9}")
    for kind in ("first start", "restart"):
        sub = [r for r in rows if r["kind"] == kind]
        print(f"{kind:12} {statistics.median(r['startup_s'] for r in sub):>17.1f} "
              f"{statistics.median(r['rss_mib'] for r in sub):>8.0f} {max(r['peak_mib'] for r in sub):>9.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"version": ns.NEO4J_VERSION, "gds": ns.GDS_VERSION if args.gds else None,
                                         "heap": args.heap,
                                         "pagecache": args.pagecache, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
