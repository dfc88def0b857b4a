"""Published microbenchmarks as BENCH files: the same calibration path as a local `planner bench` run.

``planner/data/microbench.yaml`` (a verbatim copy of the project's ``shared/data/microbench.yaml``) holds, per
accelerator, measurements other people published: stas00's *maximum achievable matmul FLOPS* (mamf-finder's best
shape, mean of 100 iterations after 50 warm-up) and nccl-tests / torch.distributed all-reduce bus bandwidths. This
module turns one accelerator's entry into a :class:`~planner.calibrate.bench.Bench` so that ``planner calibrate``
fits the hand-written profiles' measured efficiencies from data: ``planner bench --published H100_SXM -o b.yaml``
then ``planner calibrate b.yaml --into h100-sxm`` gives the ``matmul_max_achievable_fraction_*`` and
``nvlink_busbw_fraction`` of ``hardware_profiles/h100-sxm.yaml`` (a test checks it for every mapped profile).

What each field becomes:

* ``mamf_<dtype>_tflops`` -> one GEMM result at its best shape (MxNxK, as mamf-finder prints it), origin
  ``published``; without a shape, a GEMM result without dimensions (it counts for the matmul fraction, not for
  ``gemm_half_dim``, which needs several shapes).
* ``nccl_allreduce_busbw_intranode_gb_s`` -> an 8-GPU all-reduce; algorithm ``nvls`` when the entry says NVLS.
* ``allreduce_busbw_nvls_vs_ring_gb_s`` -> two 8-GPU all-reduces, ``nvls`` and ``ring``.
* ``nccl_tests_allreduce_8GiB_busbw_gb_s`` rows -> per GPU count, the default algorithm's busbw (as the row's
  ``algo``) and the NVLS-off busbw (``ring``: with NVLS disabled NCCL runs large all-reduces as rings).
* ``allreduce_busbw_1node_vs_4node_gb_s`` rows -> intra-node (8 GPUs) and inter-node (4 nodes x 8) all-reduces.
* ``allreduce_busbw_4GiB_gb_s`` -> 2- and 8-GPU all-reduces; ``allreduce_bench_max_busbw_gb_s`` -> an 8-GPU
  all-reduce (algorithm unknown).
* Anything else measured (nvbandwidth copies, PCIe) -> ``other`` (kept, not fitted).

No number is estimated: a field the source does not give stays out.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Optional

from ..errors import SpecError
from .bench import BENCH_FORMAT, Bench

PUBLISHED_FILE = Path(__file__).resolve().parent.parent / "data" / "microbench.yaml"
#: microbench.yaml accelerator key -> the hardware profile its numbers describe
PROFILE_OF = {
    "A100_SXM_80GB": "a100-80gb",
    "H100_SXM": "h100-sxm",
    "H200_SXM": "h200",
    "B200_SXM": "b200",
    "MI300X": "mi300x",
}
GPUS_PER_NODE = 8  # every node the sources measured is an 8-GPU node (DGX/HGX, p6-b200, MI300X platform)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B\s*$", re.I)


def _bytes(text) -> Optional[int]:
    """'4GiB' -> 4·2^30; None when absent or not a size."""
    if text is None:
        return None
    m = _SIZE.match(str(text))
    if not m:
        return None
    return int(float(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[m.group(2).upper()])


def _shape(text) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """'2048x2048x13312' (MxNxK, mamf-finder's order) -> (2048, 2048, 13312)."""
    if not text:
        return None, None, None
    parts = str(text).lower().split("x")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        return None, None, None
    m, n, k = (int(p) for p in parts)
    return m, n, k


def load_published(path=None) -> dict:
    from ..registry import read_yaml

    return read_yaml(Path(path) if path else PUBLISHED_FILE)


def published_keys(path=None) -> list[str]:
    """Accelerator keys with measurements, sorted."""
    data = load_published(path)
    return sorted(k for k, v in (data.get("accelerators") or {}).items() if isinstance(v, dict) and v.get("measured"))


def _cite(sources: dict, tag) -> str:
    """A source tag (S_MAMF) or free text, resolved and pinned to the commit the file names."""
    text = sources.get(tag, tag) if isinstance(tag, str) else "stas00/ml-engineering"
    return f"{text} @744d01e1 (via planner/data/microbench.yaml)" if "stas00" in text and "@" not in text \
        else f"{text} (via planner/data/microbench.yaml)"


def _published_measurements(key: str, path, data: dict) -> dict:
    """The ``measured`` mapping of accelerator ``key``; a SpecError naming the keys with measurements if none."""
    accs = data.get("accelerators") or {}
    if key not in accs:
        close = [k for k in accs if k.lower().startswith(key.lower()[:4])]
        raise SpecError(f"no accelerator {key!r} in {path or PUBLISHED_FILE}; with measurements: "
                        f"{', '.join(published_keys(path))}" + (f" (close: {', '.join(close)})" if close else ""))
    acc = accs[key]
    meas = acc.get("measured") or {}
    if not meas:
        raise SpecError(f"{key}: microbench.yaml has no measurements for it; with measurements: "
                        f"{', '.join(published_keys(path))}")
    return meas


def _add_ar(coll: list, world, busbw_gb_s, *, nbytes=None, algo=None, scope="intra_node", src, note=None) -> None:
    """Append one all-reduce row (busbw given in GB/s) to ``coll``; nothing when the busbw is absent."""
    if busbw_gb_s is None:
        return
    coll.append({"op": "all_reduce", "world_size": int(world), "bytes": nbytes,
                 "busbw_bytes_per_s": float(busbw_gb_s) * 1e9, "scope": scope, "algo": algo, "source": src,
                 "note": note})


def _mamf_gemm(dtype: str, v: dict, sources: dict) -> dict:
    """One GEMM row from a ``mamf_<dtype>_tflops`` entry (its best shape when given)."""
    m, n, k = _shape(v.get("shape"))
    bits = [f"best shape of mamf-finder (MxNxK {v['shape']})" if v.get("shape") else "shape not given",
            "mean of 100 iterations after 50 warm-up"]
    bits += [f"torch {v['torch']}"] if v.get("torch") else []
    bits += [str(v["note"])] if v.get("note") else []
    bits += [f"source's efficiency {v['efficiency']}"] if v.get("efficiency") is not None else []
    return {"dtype": dtype, "m": m, "n": n, "k": k, "flop_per_s": float(v["value"]) * 1e12,
            "origin": "published", "source": _cite(sources, v.get("source", "S_MAMF")),
            "note": "; ".join(bits)}


def _add_allreduces(name: str, v, sources: dict, coll: list) -> bool:
    """Append the all-reduce rows of entry ``name``; False when it is not an all-reduce entry of a known form."""
    if name == "nccl_allreduce_busbw_intranode_gb_s" and isinstance(v, dict):
        note = str(v.get("note") or "")
        _add_ar(coll, GPUS_PER_NODE, v.get("value"), nbytes=_bytes(v.get("payload")),
                algo="nvls" if "NVLS" in note.upper() else None, src=_cite(sources, v.get("source")),
                note=note or None)
    elif name == "allreduce_busbw_nvls_vs_ring_gb_s" and isinstance(v, dict):
        for algo in ("nvls", "ring"):
            _add_ar(coll, GPUS_PER_NODE, v.get(algo), algo=algo, src=_cite(sources, v.get("source")),
                    note=v.get("note"))
    elif name == "nccl_tests_allreduce_8GiB_busbw_gb_s" and isinstance(v, list):
        src = _cite(sources, "stas00/ml-engineering network/README.md (SHARP section)")
        for row in v:
            _add_ar(coll, row["gpus"], row.get("busbw"), nbytes=8 * 2**30,
                    algo=str(row.get("algo", "")).lower() or None,
                    src=src, note="nccl-tests all_reduce_perf, NCCL's default algorithm")
            _add_ar(coll, row["gpus"], row.get("busbw_nvls_off"), nbytes=8 * 2**30, algo="ring", src=src,
                    note="NCCL_NVLS_ENABLE=0: ring for large messages")
    elif name == "allreduce_busbw_1node_vs_4node_gb_s" and isinstance(v, list):
        src = _cite(sources, "stas00/ml-engineering network/README.md "
                    "(Inter-node speed depends on intra-node speed)")
        for row in v:
            nb = _bytes(row.get("payload"))
            _add_ar(coll, GPUS_PER_NODE, row.get("n1"), nbytes=nb, src=src, note="all_reduce_bench.py, 1 node")
            _add_ar(coll, 4 * GPUS_PER_NODE, row.get("n4"), nbytes=nb, scope="inter_node", src=src,
                    note="all_reduce_bench.py, 4 nodes")
    elif name == "allreduce_busbw_4GiB_gb_s" and isinstance(v, dict):
        for kk, val in v.items():
            g = re.fullmatch(r"gpus(\d+)", kk)
            if g:
                _add_ar(coll, int(g.group(1)), val, nbytes=4 * 2**30, src=_cite(sources, v.get("source")))
    elif name == "allreduce_bench_max_busbw_gb_s" and isinstance(v, dict):
        _add_ar(coll, GPUS_PER_NODE, v.get("value"), src=_cite(sources, v.get("source")), note=v.get("note"))
    else:
        return False
    return True


def _published_provenance(key: str, sources: dict) -> dict:
    """The BENCH provenance of a conversion from microbench.yaml."""
    return {
        "tool": f"planner.calibrate.published ({key})",
        "date": _dt.date.today().isoformat(),
        "device_type": "published",
        "device_name": key.replace("_", " "),
        "device_count": GPUS_PER_NODE,
        "source": "published measurements collected in planner/data/microbench.yaml (a copy of "
                  "shared/data/microbench.yaml): " + "; ".join(f"{k}: {v}" for k, v in sources.items()),
        "note": "not measured by planner bench: converted from publications; torch versions per entry",
    }


def published_bench(key: str, path=None) -> Bench:
    """The BENCH document of one accelerator of microbench.yaml."""
    data = load_published(path)
    meas = _published_measurements(key, path, data)
    sources = data.get("sources") or {}
    gemm, coll, other = [], [], []
    for name, v in meas.items():
        mm = re.fullmatch(r"mamf_(\w+)_tflops", name)
        if mm and isinstance(v, dict) and v.get("value"):
            gemm.append(_mamf_gemm(mm.group(1), v, sources))
        elif _add_allreduces(name, v, sources, coll):
            pass
        elif isinstance(v, dict) and isinstance(v.get("value"), (int, float)):
            unit = "GB/s" if name.endswith("_gb_s") else ("TFLOP/s" if name.endswith("_tflops") else "")
            other.append({"name": name, "value": float(v["value"]), "unit": unit,
                          "source": _cite(sources, v.get("source")) if v.get("source") else None,
                          "note": v.get("note")})
    prov = _published_provenance(key, sources)
    skipped = [{"what": w, "reason": "not in the published sources (microbench.yaml not_collected)"}
               for w in ("attention", "memory bandwidth")]
    return Bench.model_validate({"bench_format": BENCH_FORMAT, "provenance": prov, "gemm": gemm,
                                 "collectives": [{k: x for k, x in c.items() if x is not None} for c in coll],
                                 "other": [{k: x for k, x in o.items() if x is not None} for o in other],
                                 "skipped": skipped})
