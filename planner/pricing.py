"""The dated table of cloud GPU prices (``hardware_profiles/pricing/gpu_prices.yaml``) as data: list it, filter it,
and pick one price for a plan (``--price-source PROVIDER[:TIER]``).

Each row: gpu (a profile name), provider, offering, tier (on_demand, reserved, spot), usd_per_gpu_hour, date,
source, verified (false: a recalled list price not re-read from a dated copy), note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .errors import SpecError

TIERS = ("on_demand", "reserved", "spot")


def price_file() -> Path:
    from .registry import PROFILE_DIRS

    return PROFILE_DIRS[0] / "pricing" / "gpu_prices.yaml"


def _norm(text: str) -> str:
    return text.strip().lower().replace("_", "-").replace(" ", "-")


def canonical_gpu(name: str) -> str:
    """The profile name of ``name`` (a profile name or one of its aliases); ``name`` itself when unknown."""
    from . import registry

    files = registry._profile_files()
    key = _norm(name)
    if key in files:
        return key
    path = registry._profile_aliases(files).get(key)
    return _norm(path.stem) if path is not None else key


def price_rows(gpu: Optional[str] = None, tier: Optional[str] = None, provider: Optional[str] = None) -> list[dict]:
    """Rows of the price table, cheapest first within each GPU; filtered by GPU (name or alias), tier and
    provider (a case-insensitive substring)."""
    from .registry import read_data

    rows = [dict(r) for r in (read_data(price_file()).get("prices") or [])]
    if gpu is not None:
        g = canonical_gpu(gpu)
        rows = [r for r in rows if _norm(str(r.get("gpu", ""))) == g]
    if tier is not None:
        t = tier.replace("-", "_").lower()
        rows = [r for r in rows if r.get("tier") == t]
    if provider is not None:
        rows = [r for r in rows if provider.lower() in str(r.get("provider", "")).lower()]
    for r in rows:
        r["date"] = str(r.get("date", ""))
        r.setdefault("verified", False)
    return sorted(rows, key=lambda r: (str(r.get("gpu")), float(r.get("usd_per_gpu_hour") or 0)))


def choose_price(gpu: str, source: str) -> dict:
    """The one row of ``gpu`` that ``source`` names: ``PROVIDER`` or ``PROVIDER:TIER`` (provider a substring,
    case-insensitive), or ``cheapest`` / ``cheapest:TIER``. SpecError listing the choices when none or several
    match."""
    name, _, tier = source.partition(":")
    tier = tier or None
    if tier is not None and tier.replace("-", "_").lower() not in TIERS:
        raise SpecError(f"--price-source {source!r}: tier {tier!r} is not one of {', '.join(TIERS)}")
    if name.strip().lower() == "cheapest":
        rows = price_rows(gpu, tier)
        if rows:
            return rows[0]
        match = []
    else:
        match = price_rows(gpu, tier, name)
    if len(match) == 1:
        return match[0]
    choices = price_rows(gpu)
    listed = "; ".join(f"{r['provider']}:{r['tier']} ${r['usd_per_gpu_hour']:g}" for r in choices) or "none"
    what = "several rows match" if match else "no row matches"
    raise SpecError(f"--price-source {source!r}: {what} for {canonical_gpu(gpu)} in {price_file().name} "
                    f"(prices: {listed}; see `planner prices {canonical_gpu(gpu)}`)")
