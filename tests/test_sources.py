"""Sources (issue 13): no absolute machine paths in the package or its data, and no number passed off as re-read
when it was recalled (such sources say UNVERIFIED)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ABSOLUTE = re.compile(r"(?<![\w.])/(?:work|root|home|Users|tmp|mnt)/[\w.-]+")


def _files():
    for d in ("planner", "hardware_profiles", "examples", "docs"):
        for p in (ROOT / d).rglob("*"):
            if p.is_file() and p.suffix in (".py", ".yaml", ".yml", ".md", ".json", ".csv"):
                yield p
    yield ROOT / "README.md"


def test_no_absolute_machine_paths():
    bad = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in _files() for m in ABSOLUTE.finditer(p.read_text())]
    assert bad == []


def test_recalled_sources_are_marked_unverified():
    bad = []
    for p in (ROOT / "hardware_profiles").glob("*.yaml"):
        for line in p.read_text().splitlines():
            if re.search(r"from memory|not re-read", line) and "UNVERIFIED" not in line:
                bad.append(f"{p.name}: {line.strip()[:100]}")
    assert bad == []


def test_hardware_output_has_no_absolute_paths(capsys):
    from helpers import run_cli

    code, out, _ = run_cli(capsys, "hardware", "h100-sxm", "-f", "json")
    assert code == 0 and not ABSOLUTE.search(out)
