"""L1-optimal 1-D camera paths as a linear program (HiGHS), after Grundmann et al., CVPR 2011.

A path ``x_0 .. x_{n-1}`` (one coordinate of the crop window's centre, or its height) minimises

    w1 * sum|D1 x| + w2 * sum|D2 x| + w3 * sum|D3 x| + sum_j cost_j * violation_j

where ``Dk`` are forward differences (velocity, acceleration, jerk), subject to hard per-frame
bounds ``lower_t <= x_t <= upper_t``. Soft bounds ``x_t >= a_t`` / ``x_t <= b_t`` may be violated at
a linear cost (used for mask containment and the dead zone around the subject). L1 norms make the
optimum piecewise constant / linear / parabolic: the camera holds still, pans at constant speed and
eases between them, instead of jittering with every pixel the subject moves. The absolute values
are linearised with one slack variable per difference, as in the paper. Optional hard caps on the
step size: ``max_step`` (a speed limit) or ``constant=True`` (no motion at all: a locked-off shot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from napari_hotspot.errors import HotspotError


@dataclass(frozen=True)
class SmoothnessWeights:
    """Costs per pixel of the path's velocity, acceleration and jerk."""

    velocity: float = 1.0
    acceleration: float = 10.0
    jerk: float = 100.0

    def as_tuple(self) -> tuple[float, float, float]:
        return (float(self.velocity), float(self.acceleration), float(self.jerk))


@dataclass(frozen=True)
class SoftBound:
    """``x_t >= values_t`` (side "lower") or ``x_t <= values_t`` (side "upper"), violable at ``cost``
    per pixel per frame; NaN values mean no bound on that frame. ``name`` labels the violation."""

    values: np.ndarray
    side: str
    cost: float | np.ndarray
    name: str = ""


@dataclass
class L1PathResult:
    """The optimal path, or why there is none. ``status``: "optimal", "infeasible" or "failed"."""

    path: np.ndarray | None
    status: str
    objective: float = float("nan")
    violations: dict[str, np.ndarray] = field(default_factory=dict)  # per soft-bound name, (n,) >= 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "optimal"


def difference_matrix(n: int, order: int) -> sp.csr_matrix:
    """The (n - order, n) forward-difference operator of the given order (empty when n <= order)."""
    if n <= order:
        return sp.csr_matrix((0, n))
    d = sp.eye(n, format="csr")
    for _ in range(order):
        d = (d[1:] - d[:-1]).tocsr()
    return d


def solve_l1_path(
    lower: np.ndarray,
    upper: np.ndarray,
    weights: SmoothnessWeights,
    soft: Sequence[SoftBound] = (),
    max_step: float | None = None,
    constant: bool = False,
    velocity_scale: np.ndarray | None = None,
) -> L1PathResult:
    """Solve the L1 path LP for ``n = len(lower)`` frames (see the module docstring).

    ``lower``/``upper`` are hard bounds (may be +-inf). ``velocity_scale`` (n - 1,) multiplies the
    velocity weight per step (e.g. to make the camera settle where there is nothing to follow).
    Never raises for an infeasible problem: the result's status says so and the caller falls back.
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    n = lower.shape[0]
    if upper.shape != (n,) or lower.ndim != 1:
        raise HotspotError(f"lower and upper bounds must be two (n,) arrays, got {lower.shape} and {upper.shape}")
    if n == 0:
        return L1PathResult(np.zeros(0), "optimal", 0.0)
    if np.any(lower > upper + 1e-9):
        t = int(np.flatnonzero(lower > upper + 1e-9)[0])
        return L1PathResult(None, "infeasible", message=f"frame {t}: lower bound {lower[t]:.2f} > upper {upper[t]:.2f}")

    # Shift so the variables are near 0: HiGHS's tolerances are absolute.
    finite = np.concatenate([lower[np.isfinite(lower)], upper[np.isfinite(upper)]])
    for s in soft:
        v = np.asarray(s.values, dtype=np.float64)
        finite = np.concatenate([finite, v[np.isfinite(v)]])
    offset = float(np.median(finite)) if finite.size else 0.0

    w = weights.as_tuple()
    blocks = []  # (operator, weight, cap) per derivative order with a slack variable per row
    for order in (1, 2, 3):
        d = difference_matrix(n, order)
        if d.shape[0] == 0:
            continue
        cap = None
        if order == 1:
            cap = 0.0 if constant else max_step
        if w[order - 1] == 0 and cap is None and (order != 1 or velocity_scale is None):
            continue
        weight = np.full(d.shape[0], w[order - 1])
        if order == 1 and velocity_scale is not None:
            weight = weight * np.asarray(velocity_scale, dtype=np.float64)
        blocks.append((d, weight, cap))

    soft_terms = []  # (frames, values, sign, costs, name)
    for s in soft:
        values = np.asarray(s.values, dtype=np.float64)
        if values.shape != (n,):
            raise HotspotError(f"soft bound {s.name!r} has shape {values.shape}, expected ({n},)")
        if s.side not in ("lower", "upper"):
            raise HotspotError(f"soft bound side must be 'lower' or 'upper', got {s.side!r}")
        frames = np.flatnonzero(np.isfinite(values))
        costs = np.broadcast_to(np.asarray(s.cost, dtype=np.float64), (n,))[frames]
        if frames.size:
            soft_terms.append((frames, values[frames] - offset, 1.0 if s.side == "upper" else -1.0, costs, s.name))

    n_slack_d = sum(b[0].shape[0] for b in blocks)
    n_slack_s = sum(t[0].size for t in soft_terms)
    n_vars = n + n_slack_d + n_slack_s

    c = np.zeros(n_vars)
    bounds = np.empty((n_vars, 2))
    bounds[:n, 0] = lower - offset
    bounds[:n, 1] = upper - offset
    rows, b_ub = [], []
    col = n
    for d, weight, cap in blocks:
        m = d.shape[0]
        c[col:col + m] = weight
        bounds[col:col + m] = (0.0, np.inf if cap is None else cap)
        e = sp.csr_matrix((np.full(m, -1.0), (np.arange(m), col + np.arange(m))), shape=(m, n_vars))
        dx = sp.hstack([d, sp.csr_matrix((m, n_vars - n))]).tocsr()
        rows += [dx + e, -dx + e]  # |D x| <= e
        b_ub += [np.zeros(m), np.zeros(m)]
        col += m
    for frames, values, sign, costs, _name in soft_terms:
        m = frames.size
        c[col:col + m] = costs
        bounds[col:col + m] = (0.0, np.inf)
        # sign * x_t - s <= sign * value  (upper: x <= v + s; lower: -x <= -v + s)
        a = sp.csr_matrix(
            (np.concatenate([np.full(m, sign), np.full(m, -1.0)]),
             (np.concatenate([np.arange(m), np.arange(m)]), np.concatenate([frames, col + np.arange(m)]))),
            shape=(m, n_vars),
        )
        rows.append(a)
        b_ub.append(sign * values)
        col += m

    a_ub = sp.vstack(rows).tocsc() if rows else None
    b = np.concatenate(b_ub) if b_ub else None
    bounds_list = [(None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi) for lo, hi in bounds]
    try:
        res = linprog(c, A_ub=a_ub, b_ub=b, bounds=bounds_list, method="highs")
    except ValueError as exc:  # malformed problem (NaN bounds and the like)
        return L1PathResult(None, "failed", message=str(exc))
    if res.status == 2:
        return L1PathResult(None, "infeasible", message=res.message)
    if res.status != 0 or res.x is None:
        return L1PathResult(None, "failed", message=res.message)
    x = res.x
    violations: dict[str, np.ndarray] = {}
    col = n + n_slack_d
    for frames, _values, _sign, _costs, name in soft_terms:
        v = violations.setdefault(name, np.zeros(n))
        v[frames] += np.maximum(x[col:col + frames.size], 0.0)
        col += frames.size
    path = x[:n] + offset
    return L1PathResult(path, "optimal", float(res.fun), violations)
