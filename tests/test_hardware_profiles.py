"""Hardware profiles (``hardware_profiles/*.yaml``) and the dated price table (``hardware_profiles/pricing/``).

What is checked:
- every profile loads through :func:`planner.registry.load_hardware` and validates as ``HardwareSpec``;
- the eight required systems exist, each file's ``name`` equals its stem;
- every ``{value, source}`` number carries a real citation (not empty, not the default ``user-supplied``) and is a
  YAML number, not a string (PyYAML reads ``1e15`` without a dot as a string);
- the GPU names used by the measured-runs data and the friendly names resolve as aliases, and no alias is claimed
  by two profiles;
- unit sanity: bounds that a bits-for-bytes or GB-for-bytes slip would break;
- an unknown name is a ``SpecError`` naming the close profiles;
- the price table parses and every row is sourced and dated.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from planner.errors import SpecError
from planner.registry import PROFILE_DIRS, _normalise, load_hardware, profile_names
from planner.specs.hardware import USER_SOURCE, HardwareSpec

PROFILE_DIR = Path(__file__).resolve().parent.parent / "hardware_profiles"
PRICE_FILE = PROFILE_DIR / "pricing" / "gpu_prices.yaml"

REQUIRED = ["v100-sxm2", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "mi300x"]
PROFILE_FILES = sorted(PROFILE_DIR.glob("*.yaml"))

# Normalised GPU names in the measured-runs data and friendly names -> profile.
ALIASES = {
    "A100-SXM4-40GB": "a100-40gb",
    "A100-SXM4-80GB": "a100-80gb",
    "H100-SXM5-80GB": "h100-sxm",
    "H200-SXM-141GB": "h200",
    "B200-SXM-180GB": "b200",
    "a100": "a100-80gb",
    "h100": "h100-sxm",
    "v100": "v100-sxm2",
    "MI300X": "mi300x",
    "a100_sxm4_80gb": "a100-80gb",  # normalisation: case, '_' and ' ' -> '-'
}

GB = 1e9


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _sourced_nodes(obj, where=""):
    """Yield (path, mapping) for every ``{value: ..., ...}`` mapping in a raw profile."""
    if isinstance(obj, dict):
        if "value" in obj:
            yield where, obj
            return
        for k, v in obj.items():
            yield from _sourced_nodes(v, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _sourced_nodes(v, f"{where}[{i}]")


@pytest.fixture(scope="module")
def profiles() -> dict[str, HardwareSpec]:
    return {p.stem: load_hardware(p.stem) for p in PROFILE_FILES}


# ------------------------------------------------------------------------------------------------ loading


def test_profile_dir_is_the_registrys():
    assert PROFILE_DIR in [d.resolve() for d in PROFILE_DIRS]


def test_required_profiles_exist():
    names = profile_names()
    missing = [n for n in REQUIRED if n not in names]
    assert not missing, f"missing profiles: {missing} (have {names})"


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_profile_loads_and_name_matches_file(path):
    hw = load_hardware(path.stem)
    assert isinstance(hw, HardwareSpec)
    assert hw.name == path.stem
    # the path form of load_hardware gives the same spec
    assert load_hardware(str(path)) == hw


def test_generations():
    expected = {"v100-sxm2": "volta", "a100-40gb": "ampere", "a100-80gb": "ampere", "h100-sxm": "hopper",
                "h100-pcie": "hopper", "h200": "hopper", "b200": "blackwell", "mi300x": "cdna3"}
    for name, gen in expected.items():
        assert _raw(PROFILE_DIR / f"{name}.yaml").get("generation") == gen, name


def test_price_table_is_not_read_as_a_profile():
    assert "gpu-prices" not in profile_names()
    assert "pricing" not in profile_names()


# ------------------------------------------------------------------------------------------------ sources


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_every_number_is_sourced_and_numeric(path):
    nodes = list(_sourced_nodes(_raw(path)))
    assert len(nodes) >= 12, f"{path.name}: expected the full set of sourced numbers, found {len(nodes)}"
    for where, node in nodes:
        src = node.get("source")
        assert isinstance(src, str) and src.strip(), f"{path.name}:{where}: no source"
        assert src.strip() != USER_SOURCE, f"{path.name}:{where}: source is the default {USER_SOURCE!r}"
        v = node["value"]
        assert isinstance(v, (int, float)) and not isinstance(v, bool), (
            f"{path.name}:{where}: value {v!r} is {type(v).__name__}, not a number "
            "(write floats with a dot and signed exponent, e.g. 9.89e+14)"
        )
        assert math.isfinite(v) and v >= 0, f"{path.name}:{where}: value {v!r}"


def test_validated_specs_keep_the_sources(profiles):
    """The profile's own numbers keep their citations through validation (calibration keys merged in by the
    registry are checked by the calibration's own tests, not here)."""
    for name, hw in profiles.items():
        own_eff = (_raw(PROFILE_DIR / f"{name}.yaml").get("efficiency") or {}).keys()
        sourced = [*hw.accelerator.peak_flop_per_s.values(), hw.accelerator.hbm_bytes,
                   hw.accelerator.hbm_bandwidth_bytes_per_s, hw.accelerator.tdp_w,
                   hw.accelerator.memory_overhead_bytes, hw.node.gpus_per_node,
                   hw.node.intra_node_bandwidth_bytes_per_s, hw.node.intra_node_latency_s,
                   hw.network.inter_node_bandwidth_bytes_per_s, hw.network.inter_node_latency_s,
                   *(hw.efficiency[k] for k in own_eff)]
        if hw.price_usd_per_gpu_hour is not None:
            sourced.append(hw.price_usd_per_gpu_hour)
        for s in sourced:
            assert s.source and s.source != USER_SOURCE, f"{name}: {s}"


#: Profiles of parts nobody rents (a hyperscaler's own build): no list price exists to cite.
NOT_RENTED = {"h100-96gb-hbm2e"}


def test_every_profile_has_a_dated_price(profiles):
    for name, hw in profiles.items():
        if name in NOT_RENTED:
            assert hw.price_usd_per_gpu_hour is None
            continue
        price = hw.price_usd_per_gpu_hour
        assert price is not None, f"{name}: no price_usd_per_gpu_hour"
        assert 0.1 < price.value < 30, f"{name}: {price.value} USD/GPU-hour"
        assert re.search(r"20\d\d", price.source), f"{name}: price source carries no date: {price.source!r}"


# ------------------------------------------------------------------------------------------------ aliases


@pytest.mark.parametrize("alias,profile", sorted(ALIASES.items()))
def test_alias_resolves(alias, profile):
    assert load_hardware(alias).name == profile


def test_every_declared_alias_resolves_to_its_profile():
    for path in PROFILE_FILES:
        for alias in _raw(path).get("aliases") or []:
            assert load_hardware(alias).name == path.stem, f"{path.name}: alias {alias!r}"


def test_no_alias_is_claimed_twice():
    owner: dict[str, str] = {}
    stems = {_normalise(p.stem) for p in PROFILE_FILES}
    for path in PROFILE_FILES:
        for alias in _raw(path).get("aliases") or []:
            key = _normalise(alias)
            assert key not in owner or owner[key] == path.stem, f"alias {alias!r} in {owner.get(key)} and {path.stem}"
            assert key not in stems or key == _normalise(path.stem), f"alias {alias!r} of {path.stem} is a profile name"
            owner[key] = path.stem


def test_unknown_profile_lists_close_names():
    with pytest.raises(SpecError) as err:
        load_hardware("h100-sxn")
    msg = str(err.value)
    assert "h100-sxn" in msg and "h100-sxm" in msg


def test_unknown_profile_far_from_everything_lists_known_names():
    with pytest.raises(SpecError) as err:
        load_hardware("tpu-v5p")
    assert "known:" in str(err.value) or "closest:" in str(err.value)


# ------------------------------------------------------------------------------------------------ unit sanity


@pytest.mark.parametrize("name", REQUIRED)
def test_units_are_plausible(profiles, name):
    hw = profiles[name]
    acc = hw.accelerator
    assert 0.5e12 <= acc.hbm_bandwidth_bytes_per_s.value <= 10e12, "HBM bandwidth must be bytes/s (0.5-10 TB/s)"
    assert 16 * GB <= acc.hbm_bytes.value <= 300 * GB, "HBM capacity must be bytes (16-300 GB)"
    assert 0.5 * GB <= acc.memory_overhead_bytes.value <= 0.15 * acc.hbm_bytes.value
    assert 200 <= acc.tdp_w.value <= 1500, "TDP in watts"
    # tensor-core half precision: bf16 where the chip has it, else fp16 (V100)
    half = acc.peak_flop_per_s.get("bf16") or acc.peak_flop_per_s["fp16"]
    assert 1e14 <= half.value <= 5e15, "bf16/fp16 dense peak in FLOP/s"
    if "bf16" in acc.peak_flop_per_s and "fp16" in acc.peak_flop_per_s:
        assert acc.peak("fp16") == pytest.approx(acc.peak("bf16"), rel=1e-9)
    if "fp8" in acc.peak_flop_per_s:
        assert acc.peak("fp8") == pytest.approx(2 * acc.peak("bf16"), rel=1e-3), "fp8 dense peak is 2x bf16"
    if "tf32" in acc.peak_flop_per_s:
        assert acc.peak("tf32") == pytest.approx(acc.peak("bf16") / 2, rel=1e-3), "tf32 dense peak is bf16/2"
    assert 1e13 <= acc.peak("fp32") <= 2e14
    assert acc.peak("fp32") < half.value

    intra = hw.node.intra_node_bandwidth_bytes_per_s.value
    inter = hw.network.inter_node_bandwidth_bytes_per_s.value
    assert 1e9 <= inter < intra <= 2e12, "per-GPU bytes/s: network < NVLink/xGMI/PCIe"
    assert inter <= 100 * GB, "no NIC gives a GPU more than 800 Gbit/s; a Gbit/GByte slip?"
    assert 1e-6 <= hw.node.intra_node_latency_s.value < hw.network.inter_node_latency_s.value <= 1e-3
    assert hw.gpus_per_node == 8


def test_dtypes_match_the_chips(profiles):
    assert set(profiles["v100-sxm2"].accelerator.peak_flop_per_s) == {"fp32", "fp16"}
    for name in ("a100-40gb", "a100-80gb"):
        assert "fp8" not in profiles[name].accelerator.peak_flop_per_s
    for name in ("h100-sxm", "h100-pcie", "h200", "mi300x"):
        assert set(profiles[name].accelerator.peak_flop_per_s) == {"fp32", "tf32", "bf16", "fp16", "fp8"}
    # Blackwell adds FP4 (NVFP4/MXFP4) tensor cores, at 2x fp8 dense
    assert set(profiles["b200"].accelerator.peak_flop_per_s) == {"fp32", "tf32", "bf16", "fp16", "fp8", "fp4"}
    assert profiles["b200"].accelerator.peak("fp4") == 2 * profiles["b200"].accelerator.peak("fp8")
    with pytest.raises(ValueError, match="bf16"):
        profiles["v100-sxm2"].accelerator.peak("bf16")


def test_key_datasheet_numbers(profiles):
    """Spot checks against the datasheets, so a silent edit shows up."""
    p = profiles
    assert p["a100-80gb"].accelerator.hbm_bandwidth_bytes_per_s.value == 2.039e12
    assert p["a100-40gb"].accelerator.hbm_bandwidth_bytes_per_s.value == 1.555e12
    assert p["h100-sxm"].accelerator.peak("bf16") == pytest.approx(989.5e12)
    # capacity as the driver reports it (nvidia-smi MiB), not the vendor's rounded GB
    assert p["h200"].accelerator.hbm_bytes.value == 143771 * 2**20
    assert p["a100-80gb"].accelerator.hbm_bytes.value == 80 * 2**30
    assert p["b200"].node.intra_node_bandwidth_bytes_per_s.value == 900e9
    assert p["a100-80gb"].network.inter_node_bandwidth_bytes_per_s.value == 200e9 / 8  # 200 Gbit/s HDR
    assert p["h100-sxm"].network.inter_node_bandwidth_bytes_per_s.value == 400e9 / 8  # 400 Gbit/s NDR


# ------------------------------------------------------------------------------------------------ efficiency


def test_efficiency_values_are_consistent(profiles):
    """The profiles' own efficiency entries (raw YAML, before any calibration is merged in)."""
    for name, hw in profiles.items():
        eff = _raw(PROFILE_DIR / f"{name}.yaml").get("efficiency") or {}
        for key, node in eff.items():
            v = node["value"]
            assert re.fullmatch(r"[a-z0-9_]+", key), f"{name}: efficiency key {key!r}"
            if key.startswith("matmul_max_achievable_fraction_"):
                dtype = key.rsplit("_", 1)[1]
                assert 0.3 < v < 1.0, f"{name}.{key}"
                absolute = eff[f"matmul_max_achievable_flop_per_s_{dtype}"]["value"]
                assert v == pytest.approx(absolute / hw.accelerator.peak(dtype), abs=1e-4), f"{name}.{key}"
            if key.endswith("_bytes_per_s"):
                assert 1e9 < v < 2e12, f"{name}.{key} must be bytes/s"
        if "nvlink_busbw_fraction" in eff:
            ring = eff.get("allreduce_busbw_intra_node_ring_bytes_per_s") or eff["allreduce_busbw_intra_node_bytes_per_s"]
            intra = hw.node.intra_node_bandwidth_bytes_per_s.value
            assert eff["nvlink_busbw_fraction"]["value"] == pytest.approx(ring["value"] / intra, abs=1e-4), name
            assert 0.5 < eff["nvlink_busbw_fraction"]["value"] < 1.0, name


def test_measured_efficiencies_present_where_microbench_has_them(profiles):
    for name in ("a100-80gb", "h100-sxm", "h200", "b200", "mi300x"):
        assert "matmul_max_achievable_fraction_bf16" in profiles[name].efficiency, name
        assert "allreduce_busbw_intra_node_bytes_per_s" in profiles[name].efficiency, name
    # the published MAMF efficiencies (stas00/ml-engineering): A100 ~87%, H100 ~80%
    assert profiles["a100-80gb"].efficiency["matmul_max_achievable_fraction_bf16"].value == pytest.approx(0.869, abs=1e-3)
    assert profiles["h100-sxm"].efficiency["matmul_max_achievable_fraction_bf16"].value == pytest.approx(0.803, abs=1e-3)


# ------------------------------------------------------------------------------------------------ prices


DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?(\.\.\d{4}(-\d{2}(-\d{2})?)?)?$")


def test_price_table_parses_and_rows_are_sourced_and_dated():
    data = _raw(PRICE_FILE)
    assert data["unit"] == "usd_per_gpu_hour" and data["currency"] == "USD"
    rows = data["prices"]
    assert len(rows) >= 10
    known = set(profile_names())
    for i, row in enumerate(rows):
        where = f"prices[{i}] ({row.get('gpu')}, {row.get('provider')})"
        assert row["gpu"] in known, f"{where}: unknown gpu"
        assert row["tier"] in ("on_demand", "reserved"), where
        assert isinstance(row["usd_per_gpu_hour"], (int, float)) and 0.1 < row["usd_per_gpu_hour"] < 30, where
        assert isinstance(row["source"], str) and row["source"].strip(), f"{where}: no source"
        assert isinstance(row["date"], str) and DATE.match(row["date"]), f"{where}: date {row.get('date')!r}"
        assert isinstance(row["verified"], bool), where
        assert row.get("provider") and row.get("offering"), where


def test_price_table_covers_every_profile_on_demand_and_has_reserved_rows():
    rows = _raw(PRICE_FILE)["prices"]
    on_demand = {r["gpu"] for r in rows if r["tier"] == "on_demand"}
    assert set(REQUIRED) <= on_demand
    assert any(r["tier"] == "reserved" for r in rows)


def test_profile_prices_appear_in_the_table(profiles):
    rows = _raw(PRICE_FILE)["prices"]
    for name, hw in profiles.items():
        if name in NOT_RENTED:
            continue
        listed = {r["usd_per_gpu_hour"] for r in rows if r["gpu"] == name}
        assert hw.price_usd_per_gpu_hour.value in listed, f"{name}: profile price not in gpu_prices.yaml"
