"""The reference for `water-billing bench reconcile`: the same two files joined by pandas and by
polars. Reads the statement in its real format (Alipay: zip of GBK CSV with `#` markers and
trailing tabs; WeChat: gzipped ALL bill with backticks) and the bench's `ledger.csv`, joins the
payment rows full outer on out_trade_no and counts matched / amount mismatch / gateway-only /
ledger-only. Amounts become integer fen. No refunds, duplicates, near-midnight states or control
totals: the Rust run does all of those, so this is a lower bound on the work.

    python bench/join.py --out /tmp/water-billing-bench-reconcile
"""

import argparse
import gzip
import io
import json
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import polars as pl

DETAIL_SUFFIX = "_业务明细.csv"


def statement_text(path: Path, channel: str) -> str:
    """The detail CSV as text (unzipped, decoded)."""
    if channel == "alipay":
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                # GBK names without the UTF-8 flag: Python decodes them as cp437.
                name = info.filename.encode("cp437").decode("gbk")
                if name.endswith(DETAIL_SUFFIX):
                    return archive.read(info).decode("gbk")
        raise SystemExit(f"no *{DETAIL_SUFFIX} in {path}")
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return text[: text.index("\n总交易单数")]  # the detail part, without the summary


def with_pandas(text: str, channel: str, ledger_path: Path):
    started = time.perf_counter()
    if channel == "alipay":
        st = pd.read_csv(io.StringIO(text), comment="#", dtype=str, keep_default_na=False)
        st = st.rename(columns={"商户订单号": "out_trade_no", "订单金额（元）": "amount"})
        kind = st["业务类型"].str.strip()
        st = st[kind == "交易"]
        st = pd.DataFrame({
            "out_trade_no": st["out_trade_no"].str.strip(),
            "gateway_fen": (st["amount"].astype(float) * 100).round().astype("int64"),
        })
    else:
        st = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        st = st[st["交易状态"] == "`SUCCESS"]
        st = pd.DataFrame({
            "out_trade_no": st["商户订单号"].str[1:],
            "gateway_fen": (st["订单金额"].str[1:].astype(float) * 100).round().astype("int64"),
        })
    ledger = pd.read_csv(ledger_path, dtype={"out_trade_no": str, "account_no": str,
                                             "gateway_trade_no": str})
    loaded = time.perf_counter()
    joined = st.merge(ledger[["out_trade_no", "amount_fen"]], on="out_trade_no", how="outer",
                      indicator=True)
    both = joined["_merge"] == "both"
    same = joined["gateway_fen"] == joined["amount_fen"]
    counts = {
        "matched": int((both & same).sum()),
        "amount_mismatch": int((both & ~same).sum()),
        "gateway_only": int((joined["_merge"] == "left_only").sum()),
        "ledger_only": int((joined["_merge"] == "right_only").sum()),
    }
    joined_at = time.perf_counter()
    return loaded - started, joined_at - loaded, counts


def with_polars(text: str, channel: str, ledger_path: Path):
    started = time.perf_counter()
    data = text.encode("utf-8")
    if channel == "alipay":
        st = pl.read_csv(data, comment_prefix="#", infer_schema=False)
        st = st.select(
            pl.col("业务类型").str.strip_chars().alias("kind"),
            pl.col("商户订单号").str.strip_chars().alias("out_trade_no"),
            pl.col("订单金额（元）").str.strip_chars().alias("amount"),
        ).filter(pl.col("kind") == "交易")
    else:
        st = pl.read_csv(data, infer_schema=False, quote_char=None)
        st = st.select(
            pl.col("交易状态").str.slice(1).alias("kind"),
            pl.col("商户订单号").str.slice(1).alias("out_trade_no"),
            pl.col("订单金额").str.slice(1).alias("amount"),
        ).filter(pl.col("kind") == "SUCCESS")
    st = st.select(
        "out_trade_no",
        (pl.col("amount").cast(pl.Decimal(18, 2)) * 100).cast(pl.Int64).alias("gateway_fen"),
    )
    ledger = pl.read_csv(ledger_path, schema_overrides={"out_trade_no": pl.Utf8,
                                                        "account_no": pl.Utf8,
                                                        "gateway_trade_no": pl.Utf8})
    loaded = time.perf_counter()
    joined = st.join(ledger.select("out_trade_no", "amount_fen"), on="out_trade_no",
                     how="full", coalesce=True)
    counts = joined.select(
        matched=(pl.col("gateway_fen") == pl.col("amount_fen")).sum(),
        amount_mismatch=(pl.col("gateway_fen") != pl.col("amount_fen")).sum(),
        gateway_only=pl.col("amount_fen").is_null().sum(),
        ledger_only=pl.col("gateway_fen").is_null().sum(),
    ).row(0, named=True)
    joined_at = time.perf_counter()
    return loaded - started, joined_at - loaded, {k: int(v) for k, v in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/water-billing-bench-reconcile"),
                        help="the bench's --out directory")
    args = parser.parse_args()
    expected = json.loads((args.out / "expected.json").read_text())
    channel = expected["channel"]
    started = time.perf_counter()
    text = statement_text(args.out / expected["statement"], channel)
    decoded = time.perf_counter() - started
    print(f"{expected['statement_rows']} statement rows, {channel}; pandas {pd.__version__}, "
          f"polars {pl.__version__}, Python {sys.version.split()[0]}")
    print(f"  unzip/gunzip + decode (shared by both): {decoded:.3f} s")
    failed = False
    for name, run in (("pandas", with_pandas), ("polars", with_polars)):
        load, join, counts = run(text, channel, args.out / "ledger.csv")
        ok = counts == expected["join"]
        failed |= not ok
        print(f"  {name:<7} load {load:7.3f} s  join+classify {join:7.3f} s  "
              f"total {decoded + load + join:7.3f} s  {counts} {'ok' if ok else 'WRONG'}")
    if failed:
        print(f"  expected {expected['join']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
