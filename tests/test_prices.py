"""`planner prices` and `--price-source`: the dated price table as data (issue 13)."""

from __future__ import annotations

import json

from helpers import run_cli

PLAN = "examples/llama3-8b-64xh100.yaml"


def test_prices_lists_the_table_with_dates_and_sources(capsys):
    code, out, _ = run_cli(capsys, "prices", "-f", "json")
    rows = json.loads(out)["prices"]
    assert code == 0 and len(rows) >= 20
    for r in rows:
        assert {"gpu", "provider", "tier", "usd_per_gpu_hour", "date", "source", "verified"} <= set(r)
        assert r["tier"] in ("on_demand", "reserved", "spot") and r["usd_per_gpu_hour"] > 0 and r["date"]


def test_prices_of_one_gpu_by_alias_and_tier(capsys):
    code, out, _ = run_cli(capsys, "prices", "h100-sxm", "--tier", "on_demand", "-f", "json")
    rows = json.loads(out)["prices"]
    assert rows and {r["gpu"] for r in rows} == {"h100-sxm"} and {r["tier"] for r in rows} == {"on_demand"}
    code, table, _ = run_cli(capsys, "prices", "h100-sxm")
    assert code == 0 and "Lambda" in table and "$2.99" in table


def test_price_source_sets_the_plan_price(capsys):
    code, out, err = run_cli(capsys, "estimate", PLAN, "--price-source", "lambda", "-f", "json")
    d = json.loads(out)
    assert d["price_usd_per_gpu_hour"] == 2.99 and "Lambda" in err
    code, out, err = run_cli(capsys, "estimate", PLAN, "--price-source", "cheapest", "-f", "json")
    assert json.loads(out)["price_usd_per_gpu_hour"] <= 2.99


def test_price_source_errors_list_the_choices(capsys):
    code, _, err = run_cli(capsys, "estimate", PLAN, "--price-source", "nope")
    assert code == 2 and "Lambda:on_demand" in err and "planner prices h100-sxm" in err
    code, _, err = run_cli(capsys, "estimate", PLAN, "--price-source", "lambda", "--price", "2")
    assert code == 2 and "not both" in err
