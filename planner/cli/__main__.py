"""`python -m planner.cli ...` runs the `planner` command."""

from . import main

main()
