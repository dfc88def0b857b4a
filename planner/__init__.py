"""planner: what it takes to train a language model, before renting a GPU.

```python
import planner
r = planner.estimate(model="llama-3-8b", hardware="h100-sxm", run={"seq_len": 8192, "global_batch_seqs": 512},
                     layout={"gpus": 64, "fsdp": "full"})
r.fits, r.step_time_s, r.to_dict()
planner.evaluate("plan.yaml").to_dataframe()     # every scenario of a plan file
planner.compare("a.yaml", "b.yaml").rows          # side by side, deltas against the first
planner.search("plan.yaml", gpus=(64, 128)).best()          # every layout, ranked
planner.budget("h100-sxm", usd=2e6, days=30)                # what to train for $2M in 30 days
planner.compute_optimal(5.76e23)                  # N, D and loss at a compute budget (Besiroglu et al. 2024)
planner.predict_loss(70e9, 1.4e12, planner.HOFFMANN_2022)
```

``import planner`` does no work: the names below load :mod:`planner.api` on first use (PEP 562).
"""

import sys
import types

__version__ = "0.1.0"

#: Public names and the module each one lives in (imported on first access).
_LAZY = {
    "estimate": "planner.api",
    "evaluate": "planner.api",
    "compare": "planner.api",
    "search": "planner.api",
    "budget": "planner.api",
    "make_plan": "planner.api",
    "Result": "planner.api",
    "Results": "planner.api",
    "Comparison": "planner.api",
    # scaling laws: predicted loss, compute-optimal N and D, isoFLOP curves, and the published laws
    "predict_loss": "planner.core.scaling",
    "compute_optimal": "planner.core.scaling",
    "isoflop_curve": "planner.core.scaling",
    "get_law": "planner.core.scaling",
    "BESIROGLU_2024": "planner.core.scaling",
    "HOFFMANN_2022": "planner.core.scaling",
    "KAPLAN_2020": "planner.core.scaling",
    "MUENNIGHOFF_2023": "planner.core.scaling",
    "load_plan": "planner.plans",
    "load_scenarios": "planner.plans",
    "load_plan_file": "planner.plans",
    "Plan": "planner.specs.plan",
    "SpecError": "planner.errors",
}

__all__ = ["__version__", *_LAZY]

#: API functions that share their name with a submodule (``planner/search.py``, ``planner/budget.py``). Importing
#: the submodule binds it as ``planner.search`` over the function, so the submodule itself is made callable: it calls
#: the API function, and ``planner.search.Constraints`` still reaches the module.
_CALLABLE_MODULES = ("search", "budget")


class _CallableModule(types.ModuleType):
    """A submodule that also calls the API function of its name (``planner.search(plan, gpus=(64, 128))``; see
    :func:`planner.api.search` and :func:`planner.api.budget` for the arguments)."""

    def __call__(self, *args, **kwargs):
        from . import api

        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _CALLABLE_MODULES and isinstance(value, types.ModuleType) and type(value) is types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _CALLABLE_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")  # binds itself here, callable (see _Package)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'planner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
