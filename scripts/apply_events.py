r"""Fold the event log that `Recommender.record` writes into the graph store, by the build's identity rules.

  python scripts/apply_events.py --store work/scientific/store                 # STORE/events.csv
  python scripts/apply_events.py --store work/scientific/store --log other.csv --neo4j   # MERGE into Neo4j too

The log is an interactions file (user_id, product_id, timestamp, event, weight), so this is
`scripts/build_graph.py --interactions LOG` with the log's torn last line (a crash mid-append) left out:
users the store does not know are created, and an event the store already holds (same user, product,
event and timestamp; the k-th repeat matching the k-th) adds nothing, so running it twice, or after a
crash half-way, is safe. With --neo4j the events are MERGEd into the server in batches, as a build does.
Every row is validated first; a bad one stops it with the file, row and field, and nothing is written.
The log is kept: `Recommender.load` skips the rows the store now holds. Archive it when no process writes it.
Other arguments (--on-error, --neo4j-uri, --batch-size, --json, --quiet, ...) are those of build_graph.py.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, required=True, help="embedded store directory")
    ap.add_argument("--log", type=Path, help="event log (default STORE/events.csv)")
    args, rest = ap.parse_known_args(argv)

    import build_graph
    from fusion.serving.events import EventLog
    from fusion.serving.query import EVENTS_FILE

    path = args.log or args.store / EVENTS_FILE
    if not path.exists():
        print(f"error: no event log at {path}", file=sys.stderr)
        return 2
    rows = EventLog(path).read()
    if not len(rows):
        print(f"{path}: no events to apply")
        return 0
    raw = path.read_bytes()
    if raw.endswith(b"\n"):
        return build_graph.main(["--interactions", str(path), "--store", str(args.store), *rest])
    with tempfile.TemporaryDirectory(prefix="events-", dir=args.store if args.store.exists() else None) as tmp:
        clean = Path(tmp) / path.name  # the complete lines only: the torn one's record never returned
        clean.write_bytes(raw[:raw.rfind(b"\n") + 1])
        print(f"{path}: left out a torn last line (a write cut off by a crash)", file=sys.stderr)
        return build_graph.main(["--interactions", str(clean), "--store", str(args.store), *rest])


if __name__ == "__main__":
    raise SystemExit(main())
