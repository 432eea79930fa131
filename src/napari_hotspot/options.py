"""Tracking options and their defaults, written once (torch-free, so ``--help`` stays fast).

``TrackingOptions`` is what a ``HotspotSession`` runs its preflight by (``HotspotSession.preflight``:
complete the masks of click and box prompts, then adapt each object's tracker) and the working size
it encodes frames at. The command line reads it from the shared ``add_*_arg`` options below
(``tracking_options(args)``), and the tracking dock's settings are generated from its fields
(``FIELDS``), so a default, a range or a help text is changed in one place.

Why these defaults (measurements in docs/benchmarks.md):

* ``adapt_seconds`` 10 s and ``adapt_steps`` 40: beyond about 40 steps J fell again on held-out DAVIS
  (the copy overfits the prompted frames), so a fast machine stops early ("Per-video adaptation");
  re-chosen on the 12 validation-split sequences from 20 / 40 / 80 ("Adaptation steps re-chosen").
* ``complete_frames`` 5: the best of 3 / 5 / 7 / 10 / 20 frames for one click ("Completing a prompt's
  mask by a round trip").
* ``long_side`` 448: on the test set (480p) as good as 512 at 1.3x the speed; 512 scored better on the
  360p validation split (twentieth session, "Working resolution").
* ``distractor_memory`` on: a part given as a mask stays a part, and no prompt lost J on the validation
  split ("Part prompts and look-alikes").
* ``search_window`` on: each tracked frame looks for the object near its previous mask (and where the
  keyframe's look matches), not on the whole frame: on the 12 validation-split sequences mean J within
  0.002 of the whole frame for every prompt; 3-7% more frames/s for one DAVIS object, 14-17% for two,
  44% for the sample video's two small objects ("The search window").
* ``hotspot_smoothing`` 0.3: on the 12 validation-split sequences the hotspot's jitter fell about 30%
  (8.2 -> 5.6 px with the mask prompt, through eval) and it stayed on the object at least as often for every
  prompt; in the offline study 0.5 put a box prompt's hotspot off the object more often ("A steadier
  hotspot").
* ``reacquire`` on: on cut-away videos of the validation split (an absence marked where the object
  leaves), mean J rose from 0.535 / 0.470 to 0.764 / 0.894, with no cut-away frame given a mask ("Finding
  an object again after an absence").
"""

from __future__ import annotations

import argparse
from pathlib import Path
from dataclasses import dataclass, fields, replace

from .argtypes import long_side_px, non_negative_float, non_negative_int, smoothing_share
from .argtypes import parse_box as _box
from .argtypes import parse_xy as _xy

#: Per-video adaptation budget per object, seconds of training (0 = off).
DEFAULT_ADAPT_SECONDS = 10.0
#: ...and its cap on optimiser steps (None: the time budget alone).
DEFAULT_ADAPT_STEPS = 40
#: An object's adapted tracker copy tracks only frames nearer than this to a frame it learnt; further
#: away the base tracker does. The copy knows the look of the frames it learnt: once the object turns and
#: shows new parts (a car's front), it leaves them out where the base tracker, trained on many videos,
#: takes them in. Chosen on 12 validation-split sequences of davis2016-train from 10 / 20 / 30 / 40 / 60
#: (docs/benchmarks.md, "Where the adapted copy tracks": frame-0 mask, worst sequence -0.116 -> -0.009 J).
ADAPT_REACH_FRAMES = 40
#: Frames a click's or box's mask travels away and back to be completed before tracking (0 = off).
COMPLETION_FRAMES = 5
#: How much of the previous frame's hotspot a tracked frame's keeps (its offset from the object's centroid,
#: smoothed exponentially; 0 = each frame's own heat-map peak). Chosen on the validation split from 0 / 0.3 /
#: 0.5 / 0.7 (docs/benchmarks.md, "A steadier hotspot").
HOTSPOT_SMOOTHING = 0.3
#: Long side of the networks' working resolution in pixels (the short side keeps the aspect ratio).
DEFAULT_LONG_SIDE = 448
#: The range ``--long-side`` and the dock accept: below about 256 clicks give empty masks, above 2048
#: the features of one frame alone take gigabytes (docs/model_card.md, "Known limits").
LONG_SIDE_RANGE = (256, 2048)


@dataclass(frozen=True)
class TrackingOptions:
    """How a session prepares its objects before propagating them, and the size it works at.

    The defaults are the command line's. ``HotspotSession`` made without options runs no preflight
    (``TrackingOptions.propagate_only``): a library caller asks for completion and adaptation.
    """

    #: frames a click's or box's mask travels away and back before tracking (0: kept as it is)
    complete_frames: int = COMPLETION_FRAMES
    #: seconds of per-video adaptation per object (0 = off)
    adapt_seconds: float = DEFAULT_ADAPT_SECONDS
    #: cap on the optimiser steps of one adaptation (None: the time budget alone)
    adapt_steps: int | None = DEFAULT_ADAPT_STEPS
    #: long side of the networks' working resolution in pixels
    long_side: int = DEFAULT_LONG_SIDE
    #: keep out of each tracked mask what looks like the regions the tracker would wrongly add to a
    #: keyframe's own mask (a part given as a mask stays a part; ``HotspotSession._anchor_reference``)
    distractor_memory: bool = True
    #: past a frame where an object is marked absent, a forward sweep (and a backward one where no
    #: keyframe comes before that frame) looks for it on every frame and
    #: tracks it again once it is found (``HotspotSession._search_step``); False: it stays absent until
    #: its next keyframe
    reacquire: bool = True
    #: each tracked frame runs the tracker's correlation and decoder in a window around the object
    #: (its previous mask, and where the keyframe's look matches: ``tracking.search_window``) instead of
    #: on the whole frame; the rest of the frame is background
    search_window: bool = True
    #: how much of the previous tracked frame's hotspot each tracked frame keeps: its offset from the
    #: object's centroid becomes (1 - this) x its own + this x the previous frame's, snapped into the
    #: object's core (0: each frame's own heat-map peak; the tracker itself always sees its own)
    hotspot_smoothing: float = HOTSPOT_SMOOTHING

    def __post_init__(self) -> None:
        if not 0.0 <= self.hotspot_smoothing < 1.0:  # (NaN too) 1 would never move, a negative overshoots
            raise ValueError(f"hotspot_smoothing must be at least 0 and below 1, not {self.hotspot_smoothing}")

    @classmethod
    def propagate_only(cls, long_side: int = DEFAULT_LONG_SIDE) -> TrackingOptions:
        """No completion and no adaptation: ``propagate`` only propagates (its hotspots smoothed as by
        default)."""
        return cls(complete_frames=0, adapt_seconds=0.0, long_side=long_side)

    def with_(self, **changes) -> TrackingOptions:
        """A copy with some fields changed (None leaves a field as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class OptionField:
    """How a setting is shown: its label, range and help, for the dock's settings (``FIELDS``)."""

    name: str
    label: str
    minimum: float
    maximum: float
    step: float
    decimals: int
    tooltip: str


#: The settings the tracking dock edits, generated into its magicgui form (``_napari.widget.option_box``).
FIELDS = {
    "adapt_seconds": OptionField(
        "adapt_seconds", "adapt (s)", 0.0, 600.0, 1.0, 1,
        "Per-video adaptation: seconds of fine-tuning each object's own copy of the tracker on its prompts "
        f"and corrections (synthetic motion of those frames); each adaptation also stops after {DEFAULT_ADAPT_STEPS} "
        "steps (about 5 s on 2 cores). Track runs it first for every object with "
        "keyframes it has not learnt yet; 'Adapt now' runs it on demand. Cancel stops it and keeps what "
        "was learnt. 0 = off: nothing is trained (an object adapted earlier keeps its adapted copy until "
        "'Reset adaptation'). Adapted weights are saved with the project."),
    # a float box with no decimals: magicgui's int box (superqt's) shows no "off" at 0
    "complete_frames": OptionField(
        "complete_frames", "complete (frames)", 0, 30, 1, 0,
        "Before the first run (or adaptation) from a click or box prompt that picked an object on a frame "
        "without its mask, that mask is completed once: tracked this many frames away and back, and kept "
        "if it still honours the prompt (a click's mask often covers only part of its object). One undo "
        "step; clicks that corrected a mask, painted masks, Auto and gaze prompts are never changed. "
        "0 = off."),
    "hotspot_smoothing": OptionField(
        "hotspot_smoothing", "steady hotspot", 0.0, 0.9, 0.1, 1,
        "How much of the previous frame's hotspot each tracked frame keeps: the hotspot's place relative to "
        "the object's centre is blended with the previous frame's, so it follows the object without hopping "
        f"between two salient spots. 0 = each frame's own peak; default {HOTSPOT_SMOOTHING:g}. A change applies "
        "from the next sweep (a run going both ways has two); prompted and corrected frames keep their own "
        "hotspot."),
}
assert set(FIELDS) <= {f.name for f in fields(TrackingOptions)}


# ---------------------------------------------------------------------------- command-line options
def add_adapt_arg(p: argparse.ArgumentParser, what: str = "per-video adaptation budget in seconds",
                  off: str = "0 = off") -> None:
    """The --adapt option of every command that tracks (read it with `adapt_seconds`)."""
    p.add_argument("--adapt", type=non_negative_float, default=None, metavar="SECONDS",
                   help=f"{what} (default {DEFAULT_ADAPT_SECONDS:g} s, at most {DEFAULT_ADAPT_STEPS} steps, of "
                        f"training; encoding the prompted frames' views comes on top; {off})")


def adapt_seconds(args) -> float:
    return DEFAULT_ADAPT_SECONDS if args.adapt is None else max(0.0, args.adapt)


def add_complete_arg(p: argparse.ArgumentParser) -> None:
    """The --complete option of every command that tracks from one prompt (read it with `complete_frames`)."""
    p.add_argument("--complete", type=non_negative_int, default=None, metavar="FRAMES",
                   help="complete a click's or box's mask before tracking: track it this many frames away "
                        f"and back (default {COMPLETION_FRAMES}; 0 = off; a --mask or --auto mask is never "
                        "changed)")


def complete_frames(args) -> int:
    value = getattr(args, "complete", None)
    return COMPLETION_FRAMES if value is None else value


def add_long_side_arg(p: argparse.ArgumentParser) -> None:
    lo, hi = LONG_SIDE_RANGE
    p.add_argument("--long-side", type=long_side_px, default=DEFAULT_LONG_SIDE, metavar="PX",
                   help=f"long side of the networks' working resolution in pixels, {lo}-{hi} (default %(default)s)")


def add_distractor_arg(p: argparse.ArgumentParser) -> None:
    """The --no-distractor-memory option of every command that tracks."""
    p.add_argument("--no-distractor-memory", dest="distractor_memory", action="store_false",
                   help="let the tracker grow a keyframe's mask into what looks like the rest of its object "
                        "(by default, what it would wrongly add on the keyframe itself is kept out of every "
                        "tracked mask, so a part given as a mask stays a part)")


def add_window_arg(p: argparse.ArgumentParser) -> None:
    """The --whole-frame option of every command that tracks."""
    p.add_argument("--whole-frame", dest="search_window", action="store_false",
                   help="run the tracker on the whole of every frame (by default each frame is searched in a "
                        "window around the object's previous mask and where its keyframe's look matches: faster, "
                        "the same J within 0.002 on the validation split)")


def add_hotspot_smoothing_arg(p: argparse.ArgumentParser) -> None:
    """The --hotspot-smoothing option of every command that tracks."""
    p.add_argument("--hotspot-smoothing", type=smoothing_share, default=HOTSPOT_SMOOTHING, metavar="KEEP",
                   help="how much of the previous frame's hotspot each tracked frame keeps, 0-0.9: its offset "
                        "from the object's centroid is smoothed, then put back inside the object (default "
                        "%(default)s; 0 = each frame's own heat-map peak)")


def add_absent_args(p: argparse.ArgumentParser) -> None:
    """--absent FRAME (repeatable) and --no-reacquire: `track`'s way to say where the object is not."""
    p.add_argument("--absent", type=non_negative_int, action="append", default=[], metavar="FRAME",
                   help="a frame where the object is not there (it left the view, or is hidden; repeatable): its "
                        "mask is empty there, and tracking away from the prompt past it looks for the object on "
                        "every frame and tracks it again once it is found (the dock's erase-the-object-entirely)")
    p.add_argument("--no-reacquire", dest="reacquire", action="store_false",
                   help="past an --absent frame the object is not looked for: empty after it (going away from the "
                        "prompt), and frames before an --absent frame that comes before the prompt are not tracked")


def tracking_options(args) -> TrackingOptions:
    """The TrackingOptions of a parsed command line (its --adapt, --complete, --long-side,
    --no-distractor-memory, --no-reacquire, --whole-frame and --hotspot-smoothing)."""
    return TrackingOptions(complete_frames=complete_frames(args), adapt_seconds=adapt_seconds(args),
                           long_side=getattr(args, "long_side", None) or DEFAULT_LONG_SIDE,
                           distractor_memory=getattr(args, "distractor_memory", True),
                           reacquire=getattr(args, "reacquire", True),
                           search_window=getattr(args, "search_window", True),
                           hotspot_smoothing=getattr(args, "hotspot_smoothing", HOTSPOT_SMOOTHING))


def add_accept_truncated_arg(p: argparse.ArgumentParser) -> None:
    """The --accept-truncated option of every command that reads a whole video (video.require_complete)."""
    p.add_argument("--accept-truncated", action="store_true",
                   help="use the readable part of a truncated video (fewer readable frames than its container "
                        "lists); without it such a video is an error")


def add_prompt_args(p: argparse.ArgumentParser, *, tracks: bool = False) -> None:
    """--frame and one of --mask / --click / --box / --auto (or, with ``tracks``, --tracks), with --negative."""
    runs = " (runs the tracker)" if tracks else ""
    p.add_argument("--frame", type=int, default=0, help="frame of the prompt (0-based, default 0)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--mask", type=Path, help=f"PNG mask of the object on --frame (non-zero = object){runs}")
    g.add_argument("--click", type=_xy, action="append", help=f"positive click X,Y on --frame (repeatable){runs}")
    g.add_argument("--box", type=_box, help=f"box X0,Y0,X1,Y1 on --frame{runs}")
    g.add_argument("--auto", action="store_true", help=f"EG-Net picks the target on --frame{runs}")
    if tracks:
        g.add_argument("--tracks", type=Path,
                       help="saved project folder or `napari-hotspot track` output folder (masks/ + hotspots.csv)")
    p.add_argument("--negative", type=_xy, action="append", default=[],
                   help="negative click X,Y (with --click; repeat for more)")
