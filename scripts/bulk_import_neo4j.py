r"""Replace the Neo4j database with a graph from an embedded store, through `neo4j-admin database import full`.

  NEO4J_PASSWORD=... python scripts/bulk_import_neo4j.py --store work/store --home work/neo4j \
      [--csv-dir DIR] [--bolt-port 7687] [--http-port 7474] [--heap 1g] [--pagecache 512m] \
      [--threads N] [--max-off-heap-memory 2G] [--keep-csv] [--no-start] [--json report.json]

For a first load of a big catalog: the offline importer writes the store files directly, many times
faster than `build_graph.py --neo4j`'s transactional batches (docs/neo4j.md, "Bulk import"). It needs
the server stopped and replaces the whole (Community: the only) user database `neo4j`: the script
stops the server of `--home` if it runs, writes the importer's CSV files (kg/neo4j_import.py: the same
layout `Neo4jStore.write` produces, so `Neo4jStore.load()` returns the graph unchanged), runs the
import, starts the server again and creates the uniqueness constraints. Later builds with
`build_graph.py --neo4j` then add to the imported graph incrementally.

NEO4J_PASSWORD is the password of user neo4j (it is set when the home is new, else it must match).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg import neo4j_server as ns  # noqa: E402
from kg.embedded_store import EmbeddedStore  # noqa: E402
from kg.neo4j_import import bulk_import  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, required=True,
                    help="embedded store directory (scripts/build_graph.py --store)")
    ap.add_argument("--home", type=Path, required=True, help="the Neo4j server's home (scripts/neo4j_server.py --home)")
    ap.add_argument("--csv-dir", type=Path, help="where the CSV files go (default HOME/import/kgrec; removed after "
                                                 "the import unless --keep-csv)")
    ap.add_argument("--bolt-port", type=int, default=int(os.environ.get("NEO4J_BOLT_PORT", "7687")))
    ap.add_argument("--http-port", type=int, default=int(os.environ.get("NEO4J_HTTP_PORT", "7474")))
    ap.add_argument("--heap", default=os.environ.get("NEO4J_HEAP_SIZE", "1g"),
                    help="JVM heap of the importer and of the server (default 1g)")
    ap.add_argument("--pagecache", default=os.environ.get("NEO4J_PAGECACHE_SIZE", "512m"))
    ap.add_argument("--threads", type=int, help="importer threads (default: the importer's choice, one per core)")
    ap.add_argument("--max-off-heap-memory", default="2G",
                    help="importer's off-heap memory cap (default 2G; the importer's own default is 90%% of RAM)")
    ap.add_argument("--keep-csv", action="store_true", help="keep the CSV files")
    ap.add_argument("--no-start", action="store_true", help="leave the server stopped after the import "
                                                            "(the constraints are then created on the next write)")
    ap.add_argument("--json", type=Path, help="write the timings and row counts here")
    return ap.parse_args(argv)


class _ImporterMemory(threading.Thread):
    """Polls the VmHWM (peak resident memory) of the importer process (org.neo4j.cli.AdminTool ... import)
    while it runs. (RUSAGE_CHILDREN would not do: on Linux a child's maxrss starts from the RSS of this
    process, which holds the whole graph, at the fork.)"""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_kib = 0

    def run(self) -> None:
        import psutil
        me = psutil.Process()
        while not self.stop.wait(0.2):
            try:
                children = me.children(recursive=True)
            except psutil.Error:
                continue
            for child in children:
                try:
                    cmdline = child.cmdline()
                except psutil.Error:
                    continue
                if "org.neo4j.cli.AdminTool" in cmdline and "import" in cmdline:
                    self.peak_kib = max(self.peak_kib, ns.memory_kib(child.pid).get("peak", 0))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    password = os.environ.get("NEO4J_PASSWORD")
    if not password:
        print("error: set NEO4J_PASSWORD (the password of user neo4j on this server)", file=sys.stderr)
        return 2
    store = EmbeddedStore(args.store)
    if not store.exists():
        print(f"error: no graph in {args.store} (build it with scripts/build_graph.py --store)", file=sys.stderr)
        return 2
    config = ns.ServerConfig(home=args.home, password=password, bolt_port=args.bolt_port, http_port=args.http_port,
                             heap=args.heap, pagecache=args.pagecache)
    t0 = time.perf_counter()
    graph = store.load()
    load_s = time.perf_counter() - t0
    csv_dir = args.csv_dir or config.home / "import" / "kgrec"
    watch = _ImporterMemory()
    watch.start()
    try:
        report = bulk_import(graph, config, csv_dir, info={"store": str(args.store.resolve()), "bulk_import": True},
                             threads=args.threads, max_off_heap_memory=args.max_off_heap_memory,
                             start=not args.no_start, keep_csv=args.keep_csv)
    except ns.Neo4jServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        watch.stop.set()
        watch.join()
    server = report.pop("server", None)
    report.update(store_load_s=round(load_s, 3), pid=server.pid if server else None,
                  importer_peak_rss_kib=watch.peak_kib or None,
                  script_peak_rss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    rows = report["nodes"] + report["relationships"]
    print(f"imported {report['nodes']:,} nodes and {report['relationships']:,} relationships into {config.home}: "
          f"CSV {report['csv_s']:.1f}s ({report['csv_bytes'] / 2**20:,.0f} MiB), import {report['import_s']:.1f}s "
          f"({rows / max(report['import_s'], 1e-9):,.0f} rows/s)"
          + (f", server up in {report['start_s']:.1f}s, constraints {report['schema_s']:.1f}s"
             f" -> {server.bolt_uri}" if server else ", server left stopped"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
