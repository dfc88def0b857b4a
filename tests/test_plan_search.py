"""A `search:` section in a plan file: the best layout under its constraints replaces `layout` (issue 7)."""

from __future__ import annotations

import pytest

from planner.core.estimate import estimate
from planner.errors import SpecError
from planner.io.plan import InfeasibleLayout
from planner.plans import load_plan, load_plan_file
from planner.search import Constraints, search

PLAN = """
name: searched
model: llama-3-8b
hardware: h100-sxm
run: {seq_len: 4096, global_batch_seqs: 256, training_tokens: 1.0e+12}
layout: {gpus: 64}
search: {max_pp: 4, tp: [1, 2], rank: cost}
"""


def write(tmp_path, text):
    p = tmp_path / "plan.yaml"
    p.write_text(text)
    return p


def test_search_section_picks_the_searchs_best_layout(tmp_path):
    plan = load_plan(write(tmp_path, PLAN))
    assert plan.layout.num_gpus == 64 and plan.layout.tp in (1, 2) and plan.layout.pp <= 4
    # the same as asking the search directly
    base = load_plan(write(tmp_path, PLAN.replace("search: {max_pp: 4, tp: [1, 2], rank: cost}", "")))
    res = search(base, Constraints(gpus=(64,), max_pp=4, tp=(1, 2)), rank_by="cost")
    best = res.plan_of(int(res.best()))
    assert best.layout == plan.layout
    assert estimate(plan).fits


def test_search_section_in_a_scenario(tmp_path):
    text = PLAN.replace("search: {max_pp: 4, tp: [1, 2], rank: cost}", "") + (
        "scenarios:\n  given: {layout: {tp: 8}}\n  searched: {search: {tp: [1, 2]}}\n")
    pf = load_plan_file(write(tmp_path, text))
    plans = {p.name: p for p in pf.plans}
    assert plans["given"].layout.tp == 8 and plans["searched"].layout.tp in (1, 2)


def test_unknown_search_constraint_names_file_line_and_field(tmp_path):
    with pytest.raises(SpecError) as exc:
        load_plan(write(tmp_path, PLAN.replace("max_pp: 4", "max_ppp: 4")))
    msg = str(exc.value)
    assert "plan.yaml:7" in msg and "search.max_ppp" in msg and "\n" not in msg


def test_no_fitting_layout_is_infeasible_not_a_crash(tmp_path):
    text = PLAN.replace("llama-3-8b", "llama-3.1-405b").replace("gpus: 64", "gpus: 8")
    with pytest.raises(InfeasibleLayout) as exc:
        load_plan(write(tmp_path, text))
    assert "no layout fits" in exc.value.reason
