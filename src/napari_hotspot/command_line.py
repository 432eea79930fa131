"""What every command line of the package shares: one-line errors, warnings on one line, and values with a
minus sign for the options that take coordinates. `napari-hotspot` (cli.py) and the sub-commands' own
entry points (`python -m napari_hotspot.reframe.cli`, `..._napari.demo`) run through `run_command`, so a
sub-command need not import the top-level cli back."""

from __future__ import annotations

import re
import sys
import warnings

from .fileio import describe_os_error

# Options whose value is a point, box or keyframe: a value that starts with a minus sign (a click left
# of the image, "-5,100") would be taken by argparse for an option and refused as a missing value.
COORDINATE_OPTIONS = ("--click", "--negative", "--box", "--keyframe")


def attach_signed_values(argv: list[str]) -> list[str]:
    """`--click -5,100` (or `-inf,3`) as `--click=-5,100`, so that it reaches the command's own check
    ("off the image") instead of argparse's "expected one argument"."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in COORDINATE_OPTIONS and i + 1 < len(argv) and re.match(r"-([\d.]|inf|nan)", argv[i + 1], re.I):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def run_command(command: str, func, args) -> int:
    """`func(args)` as `napari-hotspot COMMAND`: the errors a user can act on (bad input, a path that
    cannot be read or written) end in one line and exit status 2, Ctrl-C in 130."""
    from .errors import HotspotError

    try:
        with warnings.catch_warnings():  # restores the default display afterwards
            warnings.showwarning = lambda message, category, *rest, **kw: print(
                f"napari-hotspot {command}: warning: {message}", file=sys.stderr)
            return int(func(args) or 0)
    except (HotspotError, FileNotFoundError) as exc:
        print(f"napari-hotspot {command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read or write no command anticipated: still one line, with the path
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"napari-hotspot {command}: error: {where}{describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-hotspot {command}: interrupted", file=sys.stderr)
        return 130
