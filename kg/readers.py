"""Read products / interactions / relations tables from CSV, Parquet or JSON Lines as string columns.

Every row keeps `_line`, its 1-based line in the file (Parquet: row number + 1), so that errors can name it.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, RowProblem

__all__ = ["read_table", "LINE"]

LINE = "_line"
_DEDUP_MAX_BYTES = 1 << 30
_DEDUP_SAMPLE = 1 << 16


def _fail(path: Path, field: str, value: str, reason: str, line: int = 0) -> InputError:
    return InputError([RowProblem(str(path), line, field, value, reason)])


def _decode(path: Path, raw: bytes, skip: bool) -> tuple[str, list[int]]:
    """UTF-8 text (BOM dropped) and the lines holding invalid bytes (only in `skip` mode, else InputError).

    With `skip`, bad bytes are replaced by U+FFFD and the rows on those lines are dropped later.
    """
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as e:
        if skip:
            bad = []
            for i, ln in enumerate(raw.split(b"\n"), start=1):
                try:
                    ln.decode("utf-8")
                except UnicodeDecodeError:
                    bad.append(i)
            return raw.decode("utf-8-sig", errors="replace"), bad
        line_start = raw.rfind(b"\n", 0, e.start) + 1
        line_no = raw.count(b"\n", 0, e.start) + 1
        header = raw.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff")
        field = "?"
        if path.suffix.lower() == ".csv":
            cols = next(csv.reader([header]))
            # count separators before the bad byte on its line to name the field
            before = raw[line_start:e.start].decode("utf-8", "replace")
            k = len(next(csv.reader([before + "x"]))) - 1
            field = cols[k] if 0 <= k < len(cols) else f"column {k + 1}"
        bad = raw[e.start:e.end].hex(" ")
        raise _fail(path, field, f"bytes {bad}", "not valid UTF-8 (re-save the file as UTF-8)", line_no) from None


def _csv_lines(raw: bytes, n_rows: int, text: str | None = None) -> np.ndarray:
    """Physical line of each record; cheap when no field spans lines, else counted by the csv module.

    `raw` is the file's bytes (a UTF-8 newline byte is always a newline); `text` its decoded form, if at hand.
    """
    n_lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    if n_lines == n_rows + 1:
        return np.arange(2, n_rows + 2, dtype=np.int64)
    if text is None:
        text = raw.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    starts = []
    prev = reader.line_num
    for rec in reader:
        if rec:
            starts.append(prev + 1)
        prev = reader.line_num
    return np.asarray(starts[:n_rows], dtype=np.int64)


def _is_long_text(col) -> bool:
    """A string column of long (over 32 bytes on average), mostly distinct values: titles, descriptions.

    Short values (ids, events, dates) are never long text, whatever their repeats."""
    import pyarrow.compute as pc

    if col.nbytes <= 32 * max(len(col), 1):
        return False
    sample = col.slice(0, _DEDUP_SAMPLE)
    return 2 * len(pc.unique(sample)) > len(sample)


def _encoded(col, strip: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """A pyarrow string column without nulls -> (codes [n], distinct (stripped) str values [k]) from one
    hash pass in Arrow (codes follow first appearance; stripping may merge values, then they are re-coded);
    None when more than half of the rows are distinct (ids of a catalog: no gain) or the column is too large
    for one dictionary."""
    import pyarrow as pa

    if col.nbytes >= _DEDUP_MAX_BYTES:
        return None
    enc = col.dictionary_encode()
    chunks = getattr(enc, "chunks", [enc])
    if not chunks:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=object)
    # the chunks of a chunked column share one memo table: each chunk's dictionary is a prefix of the longest
    dictionary = max((c.dictionary for c in chunks), key=len)
    if 2 * len(dictionary) > len(col):
        return None
    if not all(c.dictionary.equals(dictionary.slice(0, len(c.dictionary))) for c in chunks):
        enc = pa.chunked_array(chunks).unify_dictionaries()
        chunks = enc.chunks
        dictionary = chunks[0].dictionary
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks])
    raw = dictionary.to_pylist()
    values = [v.strip() for v in raw] if strip else raw
    # str.strip returns the same object when there is nothing to strip: only then can two values merge
    changed = strip and any(a is not b for a, b in zip(raw, values))
    values = np.asarray(values, dtype=object)
    del raw
    if changed and len(set(values)) < len(values):  # " a" and "a" are one value once stripped
        merged, values = pd.factorize(values)
        codes = merged[codes]
        values = np.asarray(values, dtype=object)
    return codes, values


def _stripped_objects(col, strip: bool = True, *, dedup: bool) -> np.ndarray:
    """A pyarrow string column without nulls -> object array of (stripped) str; with `dedup`, repeated values
    share one str object (58M interaction rows name only ~12M distinct users and products)."""
    # long text columns (GBs of mostly distinct descriptions) are converted chunk by chunk: pyarrow arrays
    # hold at most 2 GiB, so neither a dictionary nor a combined array would fit; long, mostly distinct text
    # (`_is_long_text`) skips the dedup, which would build a hash table and a copy of the column for nothing
    enc = _encoded(col, strip) if dedup else None
    if enc is not None:
        codes, values = enc
        return values[codes]
    chunks = [c.to_numpy(zero_copy_only=False) for c in getattr(col, "chunks", [col])]
    if strip:
        chunks = [np.asarray([v.strip() for v in c], dtype=object) for c in chunks]
    return np.concatenate(chunks).astype(object, copy=False) if chunks else np.zeros(0, dtype=object)


def _column(col, strip: bool, categorical: bool) -> pd.Series:
    """A short-valued Arrow string column -> object Series, or (`categorical`, when values repeat) a
    Categorical one whose integer codes let later steps hash each distinct value once (`kg.codes`)."""
    enc = _encoded(col, strip) if categorical else None
    if enc is None:
        return pd.Series(_stripped_objects(col, strip, dedup=True), dtype=object)
    codes, values = enc
    categories = pd.Index(values, dtype=object, copy=False)
    try:  # distinct by construction: skip pandas' uniqueness check, a hash of every value (5 s at 1000x)
        dtype = pd.CategoricalDtype._from_fastpath(categories, False)
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the private fast path
        dtype = pd.CategoricalDtype(categories)
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype, validate=False), copy=False)


_SCAN_BLOCK = 1 << 26


@dataclass
class _CsvScan:
    """What one streaming pass over a CSV file's bytes tells: enough to choose the reader and number the lines."""

    header: bytes
    empty: bool
    newlines: int
    quotes: int
    ends_with_newline: bool

    @property
    def physical_lines(self) -> int:
        return self.newlines + (0 if self.ends_with_newline else 1)


def _scan_csv(path: Path) -> _CsvScan:
    """Read `path` once in 64 MiB blocks, holding one block at a time."""
    header, empty, newlines, quotes, last = b"", True, 0, 0, b""
    with open(path, "rb") as f:
        first = True
        while block := f.read(_SCAN_BLOCK):
            if first:
                body = block[len(codecs.BOM_UTF8):] if block.startswith(codecs.BOM_UTF8) else block
                end = body.find(b"\n")
                while end < 0 and len(body) < (1 << 28):  # a header longer than a block
                    more = f.read(_SCAN_BLOCK)
                    if not more:
                        break
                    block += more
                    body += more
                    end = body.find(b"\n")
                header = (body if end < 0 else body[:end]).rstrip(b"\r")
                first = False
            empty = empty and not block.strip()
            newlines += block.count(b"\n")
            quotes += block.count(b'"')
            last = block[-1:]
    return _CsvScan(header, empty, newlines, quotes, last == b"\n")


def _read_csv_fast(path: Path, scan: _CsvScan, categorical: bool = False) -> pd.DataFrame | None:
    """Stream the file through pyarrow's CSV reader (16 MiB blocks): neither the file's bytes nor a decoded
    copy of its text is held, only the parsed columns, each turned into Python strings and then dropped.

    Returns stripped object columns, or None whenever pyarrow might read the file differently from pandas'
    C parser (a quoted or odd header, ragged rows, invalid UTF-8, ...); the caller then takes the general path,
    which also produces the error messages.
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return None
    header = scan.header
    if not header.strip() or b'"' in header or b"\r" in header:
        return None
    try:
        names = header.decode("utf-8").split(",")
    except UnicodeDecodeError:
        return None
    if len(set(names)) != len(names) or "" in names:  # pandas would rename them ("a.1", "Unnamed: 1")
        return None
    if scan.quotes % 2:  # an unterminated quote, which pyarrow would run to the end of the file
        return None
    if len(names) == 1:  # pandas skips blank-looking lines; the general path sees them
        return None
    try:
        # the header line (and a BOM before it) is skipped: the names come from the scan
        batches = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[],
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
        out = string_columns(batches, names, categorical=categorical)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.DataFrame(out, copy=False)


def string_columns(batches, names: list[str], strip: bool = True, categorical: bool = False) -> dict[str, pd.Series]:
    """Object Series of (stripped) str for the string columns `names` of an iterator of Arrow record batches
    (a CSV stream, a Parquet file's batches), without nulls.

    Long text (titles, descriptions: GBs at 1000x) becomes Python strings batch by batch, so that its Arrow
    copy never exists whole; short columns stay Arrow until the end, where repeated values share one str
    (with `categorical`, columns of repeated values come as Categoricals instead: see `kg.codes`).
    """
    import pyarrow as pa

    chunks: list[list] = [[] for _ in names]
    text: list[bool] | None = None
    for batch in batches:
        if text is None:
            text = [_is_long_text(batch.column(n)) for n in names]
        for i, n in enumerate(names):
            col = batch.column(n)
            chunks[i].append(_stripped_objects(col, strip, dedup=False) if text[i] else col)
        del batch
    out = {}
    for i, n in enumerate(names):  # column by column, so that each one's Arrow buffers go once converted
        parts, chunks[i] = chunks[i], []
        if text and text[i]:
            values = np.concatenate(parts) if parts else np.zeros(0, dtype=object)
        else:
            values = _column(pa.chunked_array(parts, type=pa.string()), strip, categorical)
        del parts
        out[n] = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    return out


def read_table(path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = (),
               problems: list[RowProblem] | None = None, categorical: bool = False) -> pd.DataFrame:
    """Read `path` (.csv, .parquet, .jsonl/.json) -> DataFrame of str columns (missing optional ones = "") + `_line`.

    With `categorical`, a CSV's columns of repeated values (ids, events, dates of an interactions file) may come
    as pandas Categoricals of the same str values, which `kg.codes` and the validation hash once per value.

    Raises InputError for a missing/empty file, bad JSON, a missing required column, or non-UTF-8 bytes;
    when `problems` is a list (skip mode), rows with non-UTF-8 bytes are dropped and reported there instead.
    """
    skip = problems is not None
    path = Path(path)
    if not path.exists():
        raise _fail(path, "-", "", "file not found")
    suffix = path.suffix.lower()
    bad_lines: list[int] = []
    stripped = False  # the fast CSV path strips as it converts
    if suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path)
        if df.empty:
            raise _fail(path, "-", "", "empty file: no rows")
        df = df.astype(object).where(df.notna(), "").astype(str)
        df[LINE] = np.arange(1, len(df) + 1, dtype=np.int64)
    elif suffix in (".csv", ".jsonl", ".json", ".ndjson"):
        bad_lines: list[int] = []
        df = None
        if suffix == ".csv":
            scan = _scan_csv(path)
            if scan.empty:
                raise _fail(path, "-", "", "empty file")
            df = _read_csv_fast(path, scan, categorical)
        if df is not None:
            if df.empty:
                raise _fail(path, "-", "", "empty file: a header but no rows")
            # one record per physical line unless a quoted field spans lines; only then are the bytes read
            df[LINE] = (np.arange(2, len(df) + 2, dtype=np.int64) if scan.physical_lines == len(df) + 1
                        else _csv_lines(path.read_bytes(), len(df)))
            stripped = True
        else:
            raw = path.read_bytes()
            if not raw.strip():
                raise _fail(path, "-", "", "empty file")
            if suffix == ".csv":
                text, bad_lines = _decode(path, raw, skip)
                try:
                    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
                except pd.errors.ParserError as e:
                    raise _fail(path, "-", "", f"not a valid CSV file: {e}") from None
                if df.empty:
                    raise _fail(path, "-", "", "empty file: a header but no rows")
                df[LINE] = _csv_lines(raw, len(df), text)
            else:
                text, bad_lines = _decode(path, raw, skip)
                recs, lines = [], []
                for i, ln in enumerate(text.splitlines(), start=1):
                    if not ln.strip():
                        continue
                    try:
                        obj = json.loads(ln)
                    except json.JSONDecodeError as e:
                        raise _fail(path, "-", ln[:80], f"not valid JSON ({e.msg})", i) from None
                    if not isinstance(obj, dict):
                        raise _fail(path, "-", ln[:80], "each line must be a JSON object", i)
                    recs.append(obj)
                    lines.append(i)
                df = pd.DataFrame.from_records(recs)
                df = df.astype(object).where(df.notna(), "").astype(str)
                df[LINE] = np.asarray(lines, dtype=np.int64)
    else:
        raise _fail(path, "-", suffix, "unsupported file type: use .csv, .parquet or .jsonl")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise _fail(path, missing[0], "", f"missing required column {missing[0]!r} "
                    f"(found: {', '.join(c for c in df.columns if c != LINE)})", 1)
    absent = [c for c in optional if c not in df.columns]
    blank = np.full(len(df), "", dtype=object) if absent else None  # one array for all absent columns
    for c in absent:
        df[c] = pd.Series(blank, index=df.index, dtype=object, copy=False)
    keep = [*required, *optional, LINE]
    df = df[keep]  # copy-on-write: no copy of the columns
    for c in (*required, *optional):
        if c not in absent and not (stripped and (df[c].dtype == object or df[c].dtype == "category")):
            df[c] = df[c].astype(object).str.strip()
    if bad_lines:
        # the row holding a bad line is the last one that starts at or before it
        rows = np.unique(np.searchsorted(df[LINE].to_numpy(), np.asarray(bad_lines), side="right") - 1)
        rows = rows[rows >= 0]
        for i in rows:
            field = next((c for c in (*required, *optional) if "\ufffd" in df[c].iat[i]), "?")
            value = df[field].iat[i] if field != "?" else ""
            problems.append(RowProblem(str(path), int(df[LINE].iat[i]), field, value, "not valid UTF-8"))
        df = df.drop(index=df.index[rows]).reset_index(drop=True)
    return df
