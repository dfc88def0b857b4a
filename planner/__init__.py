"""planner: what it takes to train a language model, before renting a GPU."""

__version__ = "0.1.0"
