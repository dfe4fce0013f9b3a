"""A session with the query API (`fusion.Recommender`) on the trained Scientific model; docs/query_api.md
shows its output.

  python scripts/api_session.py [--model work/scientific/model] [--user 2681]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = ["rank", "product_id", "title", "score", "brand"]


def show(title: str, frame, columns=COLUMNS) -> None:
    print(f"\n>>> {title}")
    f = frame[[c for c in columns if c in frame.columns]].copy()
    f["title"] = [t if len(t) <= 58 else t[:57] + "…" for t in f["title"]]
    print(f.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("work/scientific/model"))
    ap.add_argument("--user", default="2681")
    args = ap.parse_args(argv)

    import pandas as pd

    from fusion import Recommender

    t = time.perf_counter()
    # the store recorded in meta.json, bound with every interaction; this session's events go to a throwaway log
    # (the default, event_log="auto", is STORE/events.csv, which the next load replays)
    log = Path(tempfile.mkdtemp(prefix="api-session-")) / "events.csv"
    rec = Recommender.load(args.model, event_log=log)
    print(f">>> Recommender.load({str(args.model)!r})  # {time.perf_counter() - t:.1f} s")
    print(rec)
    user = args.user

    show(f"rec.recommend({user!r}, k=5)", rec.recommend(user, k=5))
    show(f"rec.recommend({user!r}, k=3, categories='Fasteners')", rec.recommend(user, k=3, categories="Fasteners"),
         [*COLUMNS, "category"])
    show('rec.search("stainless steel staples", k=5)', rec.search("stainless steel staples", k=5))
    show('rec.similar("1", k=5)  # Stanley TRA708T staples: what the model puts beside it',
         rec.similar("1", k=5))
    show('rec.similar("1", k=5, text_weight=1.0)  # look-alikes', rec.similar("1", k=5, text_weight=1.0))

    top = rec.recommend(user, k=1)["product_id"].iloc[0]
    print(f"\n>>> rec.explain({user!r}, {top!r})")
    for e in rec.explain(user, top):
        print(f"{e.score:.3f}  {e.text}")
        print(f"       {' -> '.join(f'{lbl}:{name[:24]}' for lbl, _, name in e.nodes)}  {e.relations}")

    new = pd.DataFrame([{
        "product_id": "NEW-001",
        "title": "Stanley TRA706SST 3/8-Inch Heavy Duty Stainless Steel Narrow Crown Staples, 1,000-Count",
        "description": "Stainless steel staples for outdoor jobs where rust is a concern. Fits TR100, TR110, "
                       "TR200, TRE500 and Arrow T-50.",
        "brand": "Stanley",
        "categories": "Industrial & Scientific > Fasteners > Collated Fasteners > Staples",
    }])
    t = time.perf_counter()
    added = rec.add_products(new)
    print(f"\n>>> rec.add_products(new)  # one new product, no retraining: {time.perf_counter() - t:.2f} s")
    print(added)
    show('rec.similar("NEW-001", k=5)', rec.similar("NEW-001", k=5))
    show('rec.search("stainless steel staples", k=5)', rec.search("stainless steel staples", k=5))
    show(f'rec.recommend({user!r}, k=5, categories="Staples")', rec.recommend(user, k=5, categories="Staples"))
    print(f"\n>>> rec.explain({user!r}, 'NEW-001')")
    for e in rec.explain(user, "NEW-001"):
        print(f"{e.score:.3f}  {e.text}")
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        show('rec.recommend("someone-new", k=3)  # unknown user: most popular, with a warning',
             rec.recommend("someone-new", k=3), [*COLUMNS, "source"])
    show('rec.recommend_new_user(["1", "388"], k=3)', rec.recommend_new_user(["1", "388"], k=3))

    t = time.perf_counter()
    rec.record(user, "1839", event="purchase")  # Stanley stainless steel staples
    print(f"\n>>> rec.record({user!r}, '1839', event='purchase')  # {1000 * (time.perf_counter() - t):.2f} ms, "
          f"logged to {rec.event_log.name}")
    show(f"rec.recommend({user!r}, k=5)  # the purchase counts at once", rec.recommend(user, k=5))
    show(f'rec.recommend({user!r}, k=3, categories="Staples")', rec.recommend(user, k=3, categories="Staples"))
    print(f"\n>>> rec.explain({user!r}, '2')  # another Stanley staple: the new purchase is the reason")
    for e in rec.explain(user, "2"):
        print(f"{e.score:.3f}  {e.text}")
    rec.record("someone-new", "1839", event="purchase")
    show('rec.recommend("someone-new", k=3)  # known from the first event', rec.recommend("someone-new", k=3),
         [*COLUMNS, "source"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
