"""Cross-validated accuracy of the time model, and the files generated from it (run by hand: ~3 minutes).

    python benchmarks/cross_validate.py            # print the tables
    python benchmarks/cross_validate.py --write    # also rewrite README.md's accuracy section and
                                                   # planner/data/accuracy.yaml (the error bands)

Leave-one-source-out and leave-one-GPU-generation-out, as `planner validate --cross-validate` runs them
(planner/calibrate/crossval.py). The README's accuracy table is this script's output, between the markers
`<!-- accuracy:begin -->` and `<!-- accuracy:end -->`; a test checks the committed README and bands file match
what the committed calibration gives.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.calibrate.bands import accuracy_markdown, bands_document, write_bands  # noqa: E402
from planner.calibrate.crossval import cross_validate  # noqa: E402
from planner.calibrate.measured import load_runs  # noqa: E402
from planner.calibrate.validate import modelable, validate  # noqa: E402

BEGIN, END = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"


def main(argv: list[str]) -> None:
    runs, _ = modelable(load_runs()[0])
    cv = cross_validate(runs, progress=lambda m: print(f"fitting {m} ...", file=sys.stderr))
    in_sample = validate()
    text = accuracy_markdown(cv, in_sample)
    print(text)
    if "--write" in argv:
        readme = ROOT / "README.md"
        body = readme.read_text()
        if BEGIN in body and END in body:
            head, rest = body.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            readme.write_text(head + BEGIN + "\n" + text + END + tail)
            print(f"wrote {readme}", file=sys.stderr)
        else:
            print(f"README.md has no {BEGIN} ... {END} markers: not written", file=sys.stderr)
        path = write_bands(bands_document(cv, runs))
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
