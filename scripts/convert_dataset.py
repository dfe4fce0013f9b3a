"""Convert a public Amazon dataset layout into our products / interactions / relations CSV files.

  python scripts/convert_dataset.py amazon-json --items X.item.json --interactions X.inter.json --out DIR
  python scripts/convert_dataset.py amazon-kg --dir D --out DIR
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg.convert import convert_amazon_json, convert_amazon_kg  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="format", required=True)
    a = sub.add_parser("amazon-json", help="X.item.json + X.inter.json (e.g. ../shared/data/amazon-scientific)")
    a.add_argument("--items", required=True, type=Path)
    a.add_argument("--interactions", required=True, type=Path)
    a.add_argument("--out", required=True, type=Path)
    k = sub.add_parser("amazon-kg", help="PGPR/TPRec folder (e.g. ../shared/data/amazon-beauty-kg)")
    k.add_argument("--dir", required=True, type=Path)
    k.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.format == "amazon-json":
        res = convert_amazon_json(args.items, args.interactions, args.out)
    else:
        res = convert_amazon_kg(args.dir, args.out)
    for name, path in res.files.items():
        print(f"{name:<18} {res.rows[name]:>10,} rows -> {path}")
    print(f"converted in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
