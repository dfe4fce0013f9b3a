"""The main job with Neo4j as the graph store: server -> build the graph in it -> train from it -> write the
recommendations back -> three queries to paste into Neo4j Browser.

  NEO4J_PASSWORD=... python scripts/demo_neo4j.py [--data ../shared/data] [--work work] [--server-dir work/neo4j]

Starts the server of `--server-dir` (kg.neo4j_server; Bolt 127.0.0.1:7687, Browser :7474) unless one
already answers there, and leaves it running for you to explore (`make neo4j-stop` stops it). Uses
amazon-scientific when present, else the small generated catalog of scripts/demo.py.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from demo import run, step, toy_catalog  # noqa: E402


def ensure_server(home: Path, password: str):
    """The server of `home`: started if it is not running; returns (bolt uri, http uri)."""
    from kg import neo4j_server as ns
    config = ns.ServerConfig(home=home, password=password,
                             bolt_port=int(os.environ.get("NEO4J_BOLT_PORT", "7687")),
                             http_port=int(os.environ.get("NEO4J_HTTP_PORT", "7474")),
                             heap=os.environ.get("NEO4J_HEAP_SIZE", "1g"),
                             pagecache=os.environ.get("NEO4J_PAGECACHE_SIZE", "512m"))
    if ns.is_running(home):
        print(f"Neo4j already running from {config.home}")
    else:
        server = ns.start(config)
        print(f"Neo4j {ns.NEO4J_VERSION} started in {server.startup_s:.1f}s (pid {server.pid})")
    return config.bolt_uri, config.http_uri


def example_ids(store, model: Path, local_store: Path) -> tuple[str, str]:
    """A user whose top 10 holds a product that a path explains, and that product."""
    from fusion import Recommender
    from kg import cypher

    rec = Recommender.load(model, store=local_store)
    driver = store.connect()
    for user in rec.user_ids[:500]:
        for product in rec.recommend(user, k=10)["product_id"]:
            rows = driver.execute_query(cypher.EXPLORE_RESULTS["why_recommended"],
                                        {"user_id": user, "product_id": product, "k": 1}).records
            if rows:
                return user, product
    return rec.user_ids[0], rec.recommend(rec.user_ids[0], k=1)["product_id"].iloc[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "work")
    ap.add_argument("--server-dir", type=Path, default=ROOT / "work" / "neo4j")
    args = ap.parse_args(argv)
    password = os.environ.get("NEO4J_PASSWORD")
    if not password:
        print("error: set NEO4J_PASSWORD (8 or more characters): it becomes user neo4j's password", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    step("1. start Neo4j (Maven Central jars, no Docker)")
    bolt, http = ensure_server(args.server_dir, password)
    os.environ["NEO4J_URI"] = bolt
    src = args.data / "amazon-scientific"
    ds = args.work / ("scientific-neo4j" if src.exists() else "toy-neo4j")
    step("2. convert the catalog")
    if src.exists():
        run("scripts/convert_dataset.py", "amazon-json", "--items", src / "Scientific.item.json",
            "--interactions", src / "Scientific.inter.json", "--out", ds)
    else:
        toy_catalog(ds)
    store = ds / "store"
    step("3. build the knowledge graph in Neo4j (a local embedded copy goes to --store)")
    run("scripts/build_graph.py", "--products", ds / "products.csv", "--interactions", ds / "interactions.csv",
        "--store", store, "--neo4j")
    model = ds / "model"
    step("4. train the fusion model, reading the graph from Neo4j")
    run("scripts/train.py", "--neo4j", "--store", store, "--out", model, "--split", "loo")
    step("5. write embeddings, RECOMMENDED and SIMILAR_TO back to Neo4j (vector index product_embedding)")
    run("scripts/export_to_neo4j.py", "--model", model, "--store", store, "--neo4j", "--users", "all")

    from kg import Neo4jConfig, Neo4jStore
    from kg.cypher import EXPLORE_RESULTS, EXPLORE_RESULTS_EXAMPLE_PARAMS
    with Neo4jStore(Neo4jConfig.from_env()) as neo:
        user, product = example_ids(neo, model, store)
    step(f"6. explore: open {http}/browser/ , connect to {bolt} as neo4j, paste each block")
    for name in ("history_and_recommendations", "why_recommended", "vector_neighbours"):
        params = {**EXPLORE_RESULTS_EXAMPLE_PARAMS[name], "user_id": user, "product_id": product}
        params = {k: v for k, v in params.items() if k in EXPLORE_RESULTS_EXAMPLE_PARAMS[name]}
        print(f"\n// {name.replace('_', ' ')}")
        for k, v in params.items():
            print(f":param {k} => {v!r}")
        print(EXPLORE_RESULTS[name] + ";")
    print(f"\ndemo-neo4j finished in {time.perf_counter() - t0:.0f}s; the server keeps running "
          f"(`make neo4j-stop` stops it); more queries in cypher/explore.cypher")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
