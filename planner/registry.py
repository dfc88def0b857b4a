"""Named model presets (``planner/presets/*.yaml``) and hardware profiles (``hardware_profiles/*.yaml``).

Loaded when asked, never at import. An unknown name is a :class:`SpecError` that lists the closest names.
"""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from .errors import SpecError, format_validation_error
from .io.yamlsrc import load_with_lines
from .specs.hardware import HardwareSpec
from .specs.model import ModelSpec

PRESET_DIR = Path(__file__).parent / "presets"
#: Profiles ship at the repository root (``hardware_profiles/``); PLANNER_PROFILES adds another folder.
PROFILE_DIRS = [Path(__file__).resolve().parent.parent / "hardware_profiles"]


def _profile_dirs() -> list[Path]:
    extra = os.environ.get("PLANNER_PROFILES")
    dirs = [Path(p) for p in extra.split(os.pathsep)] if extra else []
    return dirs + PROFILE_DIRS


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _exists(path: Path) -> bool:
    """``path.exists()`` that is False, not an exception, for a name the system refuses (too long, a NUL byte)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def read_yaml(path: Path) -> dict:
    """A YAML mapping from ``path``; SpecError naming the file (and line) when it is not one."""
    return load_with_lines(Path(path))[0]


def _is_package_file(path: Path) -> bool:
    """True for the data planner ships (presets, hardware_profiles/): trusted, read the fast way."""
    p = Path(path)
    return any(p.is_relative_to(d) for d in (PRESET_DIR, *PROFILE_DIRS))


def read_data(path: Path) -> dict:
    """A YAML mapping: planner's own data through libyaml's C loader without line tracking (fast); user files,
    and package files that fail to load, through :func:`read_yaml`, whose error names the file and line."""
    path = Path(path)
    if _is_package_file(path):
        import yaml

        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None
        if isinstance(data, dict):
            return data
    return read_yaml(path)


@lru_cache(maxsize=None)
def _preset_files() -> dict[str, Path]:
    return {_normalise(p.stem): p for p in sorted(PRESET_DIR.glob("*.yaml"))}


@lru_cache(maxsize=None)
def _profile_files() -> dict[str, Path]:
    """Profile files by normalised name (file stem); aliases are in :func:`_profile_aliases`, read only when a
    name is not a file name."""
    out: dict[str, Path] = {}
    for d in reversed(_profile_dirs()):
        for p in sorted(d.glob("*.yaml")) if d.is_dir() else []:
            out[_normalise(p.stem)] = p
    return out


def _profile_aliases(files: dict[str, Path]) -> dict[str, Path]:
    """Every profile's ``aliases:``, normalised (reads every profile: only for a name that is not a file)."""
    return _alias_index(tuple(files.values()))


@lru_cache(maxsize=8)
def _alias_index(paths: tuple[Path, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        for alias in (read_data(p).get("aliases") or []):
            out[_normalise(alias)] = p
    return out


def _unknown(kind: str, name: str, known) -> SpecError:
    close = difflib.get_close_matches(_normalise(name), list(known), n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(sorted(known)[:12])} ..."
    return SpecError(f"unknown {kind} {name!r}{hint}")


def preset_names() -> list[str]:
    """All model preset names, sorted."""
    return sorted(_preset_files())


def profile_names() -> list[str]:
    """All hardware profile names (not aliases), sorted."""
    return sorted(_profile_files())


def preset_data(name: str) -> dict:
    """The raw mapping of a model preset (for ``extends:`` with overrides)."""
    files = _preset_files()
    key = _normalise(name)
    if key not in files:
        raise _unknown("model preset", name, files)
    return read_data(files[key])


def load_model(name: str) -> ModelSpec:
    """A model preset by name."""
    data = preset_data(name)
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, prefix=f"preset {name}")) from None


def profile_data(name: str) -> dict:
    """The raw mapping of a hardware profile."""
    files = _profile_files()
    key = _normalise(name)
    if key not in files:
        path = Path(name)
        if path.suffix in (".yaml", ".yml") and _exists(path):
            return read_yaml(path)
        aliases = _profile_aliases(files)
        if key not in aliases:
            raise _unknown("hardware profile", name, files)
        return read_data(aliases[key])
    return read_data(files[key])


def calibration_path(generation: str) -> Path | None:
    """The calibration file of a GPU generation, if one has been fitted."""
    return _generation_file("calibration", generation)


def _generation_file(folder: str, generation: str) -> Path | None:
    for d in _profile_dirs():
        p = d / folder / f"{generation}.yaml"
        if p.exists():
            return p
    return None


def with_calibration(data: dict) -> dict:
    """``data`` with its generation's fitted efficiencies merged under ``efficiency`` and its measured attention
    kernels under ``attention_kernels`` (``hardware_profiles/kernels/``); the profile's own keys win."""
    gen = data.get("generation")
    if not gen:
        return data
    merged = dict(data)
    path = calibration_path(gen)
    if path is not None:
        fitted = read_data(path).get("parameters") or {}
        merged["efficiency"] = {**fitted, **(data.get("efficiency") or {})}
    kernels = _generation_file("kernels", gen)
    if kernels is not None:
        measured = read_data(kernels).get("attention_kernels") or {}
        merged["attention_kernels"] = {**measured, **(data.get("attention_kernels") or {})}
    if "accuracy" not in data:
        merged["accuracy"] = accuracy_of(gen)
    return merged


#: The cross-validated error bands and validated region of each generation (planner/calibrate/bands.py).
ACCURACY_PATH = Path(__file__).parent / "data" / "accuracy.yaml"


def accuracy_of(generation: str) -> dict | None:
    """The accuracy entry of a generation: its own when it has measured runs, else the borrowed band."""
    if not ACCURACY_PATH.exists():
        return None
    doc = read_data(ACCURACY_PATH)
    own = (doc.get("generations") or {}).get(generation)
    if own is not None:
        return {**own, "borrowed": False}
    borrowed = doc.get("borrowed")
    return {**borrowed, "borrowed": True} if borrowed else None


def load_hardware(name: str) -> HardwareSpec:
    """A hardware profile by name, alias, or path to a profile YAML, with its generation's calibration."""
    data = with_calibration(profile_data(name))
    try:
        return HardwareSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, prefix=f"hardware {name}")) from None


def cluster_names() -> list[str]:
    """The cluster profiles (``hardware_profiles/clusters/*.yaml``): a node and fabric to put a GPU in."""
    return sorted({p.stem for d in _profile_dirs() for p in (d / "clusters").glob("*.yaml")})


def cluster_data(name: str) -> dict:
    """A cluster profile's mapping (its ``node`` and ``network`` sections replace a GPU profile's)."""
    if not isinstance(name, str) or not name.replace("-", "").replace(".", "").replace("_", "").isalnum():
        raise SpecError(f"cluster: {str(name)[:80]!r} is not a cluster profile name (known: "
                        f"{', '.join(cluster_names())})")
    path = _generation_file("clusters", name)
    if path is None:
        raise _unknown("cluster", str(name), cluster_names())
    return read_data(path)
