"""`planner prices [GPU]`: the dated table of cloud GPU prices, with provider, tier, date and source."""

from __future__ import annotations

from typing import Optional

import typer

from .. import report
from .common import FORMAT_OPT, Fmt, emit, note


def prices_command(
    gpu: Optional[str] = typer.Argument(None, help="A hardware profile (name or alias); all GPUs when omitted."),
    tier: Optional[str] = typer.Option(None, "--tier", help="on_demand, reserved or spot."),
    provider: Optional[str] = typer.Option(None, "--provider", help="Only this provider (a part of its name)."),
    fmt: Fmt = FORMAT_OPT,
):
    """List the dated cloud prices per GPU-hour (provider, tier, date, source). Use one in a plan with
    `--price-source PROVIDER[:TIER]` (or `cheapest`), or give your own with `--price`."""
    from ..pricing import price_file, price_rows

    rows = price_rows(gpu, tier, provider)
    cols = ["gpu", "provider", "tier", "usd_per_gpu_hour", "date", "verified", "offering", "source"]
    table = report.FitTable(f"GPU prices, USD per GPU-hour ({price_file().name})",
                            caption="verified: read from the cited page; no: a recalled list price, not re-read. "
                                    "Prices move: pass what you pay with --price.")
    for c in cols:
        table.add_column(c, justify="right" if c == "usd_per_gpu_hour" else "left", ident=c in ("gpu", "provider"),
                         **({"overflow": "fold"} if c in ("source", "offering") else {}))
    for r in rows:
        table.add_row(*[report.escape(report.usd(r[c]) if c == "usd_per_gpu_hour" else
                                      ("yes" if r[c] else "no") if c == "verified" else str(r.get(c) or ""))
                        for c in cols])
    emit(fmt, {"prices": rows}, rows=rows, table=table)
    if not rows:
        note("no price matches; `planner prices` lists them all")
