"""`napari-hotspot eval` with module constants of the session overridden, for choosing a rule on the
validation split before it becomes the default (e.g. the refinement passes, docs/benchmarks.md).

    python benchmarks/eval_rule.py REFINE_PASSES=1 [NAME=VALUE ...] -- --davis-root ../shared/data/davis2016-train \\
        --sequences boat dog-agility hockey mallard-water rollerblade swing \\
        --weights benchmarks/weights/wcs_lite0_split.pt --init click --out runs/rule
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        sys.exit(__doc__)
    import napari_hotspot.session as session
    from napari_hotspot.cli import main as cli_main

    split = argv.index("--")
    for item in argv[:split]:
        name, _, value = item.partition("=")
        if not hasattr(session, name) or not name.isupper():
            sys.exit(f"napari_hotspot.session has no constant {name!r}")
        current = getattr(session, name)
        # bool("0") is True, tuple("a,b") splits letters: only what its own type parses faithfully.
        if isinstance(current, bool) or not isinstance(current, (int, float, str)):
            sys.exit(f"{name} is a {type(current).__name__}: only numbers and strings can be set here")
        setattr(session, name, type(current)(value))
    return cli_main(["eval", *argv[split + 1:]])


if __name__ == "__main__":
    sys.exit(main())
