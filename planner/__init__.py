"""planner: what it takes to train a language model, before renting a GPU.

```python
import planner
r = planner.estimate(model="llama-3-8b", hardware="h100-sxm", run={"seq_len": 8192, "global_batch_seqs": 512},
                     layout={"gpus": 64, "fsdp": "full"})
r.fits, r.step_time_s, r.to_dict()
planner.evaluate("plan.yaml").to_dataframe()     # every scenario of a plan file
```

``import planner`` does no work: the names below load :mod:`planner.api` on first use (PEP 562).
"""

__version__ = "0.1.0"

#: Public names and the module each one lives in (imported on first access).
_LAZY = {
    "estimate": "planner.api",
    "evaluate": "planner.api",
    "make_plan": "planner.api",
    "Result": "planner.api",
    "Results": "planner.api",
    "load_plan": "planner.plans",
    "load_scenarios": "planner.plans",
    "load_plan_file": "planner.plans",
    "Plan": "planner.specs.plan",
    "SpecError": "planner.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'planner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
