"""Float64 numpy references for the hyperbolic layers, written literally from the papers.

Deliberately in the papers' form, not spiraljax's: λ_x, cosh/sinh/arsinh of the full
arguments, Ungar's Möbius addition, arccosh distances, loops over positions and heads,
scipy's Beta function. Shimizu et al. 2021 (HNN++) §3.1–3.5; Chen et al. 2022 §3.2;
Nagano et al. 2019; Mathieu et al. 2019.
"""

from __future__ import annotations

import numpy as np
from scipy.special import beta as beta_fn


def _a(x):
    return np.asarray(x, dtype=np.float64)


def lam(x, c):
    return 2 / (1 - c * np.sum(x * x, axis=-1, keepdims=True))


def mobius_add(x, y, c):
    xy = np.sum(x * y, -1, keepdims=True)
    x2 = np.sum(x * x, -1, keepdims=True)
    y2 = np.sum(y * y, -1, keepdims=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return num / (1 + 2 * c * xy + c * c * x2 * y2)


def project(y, c, eps=1e-5):
    """spiraljax's ball margin: norms clipped at (1 − ε)/√c."""
    n = np.linalg.norm(y, axis=-1, keepdims=True)
    bound = (1 - eps) / np.sqrt(c)
    return np.where(n > bound, y * bound / np.maximum(n, 1e-300), y)


def expmap0(u, c):
    """exp₀, then spiraljax's margin (``project``), as every ball-valued result is."""
    n = np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-300)  # 0 ↦ 0 (the origin)
    return project(np.tanh(np.sqrt(c) * n) * u / (np.sqrt(c) * n), c)


def logmap0(y, c):
    n = np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-300)
    return np.arctanh(np.sqrt(c) * n) * y / (np.sqrt(c) * n)


def dist(x, y, c):
    d2 = np.sum((x - y) ** 2, -1)
    den = (1 - c * np.sum(x * x, -1)) * (1 - c * np.sum(y * y, -1))
    return np.arccosh(1 + 2 * c * d2 / den) / np.sqrt(c)


def hnnpp_mlr(x, z, r, c):
    """HNN++ §3.1: v_k = 2‖z_k‖/√c · arsinh(λ_x⟨√c x, [z_k]⟩cosh(2√c r_k)
    − (λ_x − 1)sinh(2√c r_k))."""
    x, z, r = _a(x), _a(z), _a(r)
    zn = np.linalg.norm(z, axis=-1)
    lx = lam(x, c)
    arg = lx * np.sqrt(c) * (x @ (z / np.maximum(zn, 1e-300)[:, None]).T) * np.cosh(
        2 * np.sqrt(c) * r
    ) - (lx - 1) * np.sinh(2 * np.sqrt(c) * r)
    return 2 * zn / np.sqrt(c) * np.arcsinh(arg)


def hnnpp_fc(x, z, r, c):
    """HNN++ §3.2: y = w/(1 + √(1 + c‖w‖²)), w_k = sinh(√c v_k)/√c (then the margin)."""
    w = np.sinh(np.sqrt(c) * hnnpp_mlr(x, z, r, c)) / np.sqrt(c)
    return project(w / (1 + np.sqrt(1 + c * np.sum(w * w, -1, keepdims=True))), c)


def beta_n(n):
    return beta_fn(n / 2, 1 / 2)


def beta_concat(xs, c):
    n = sum(x.shape[-1] for x in xs)
    v = np.concatenate([logmap0(_a(x), c) * beta_n(n) / beta_n(x.shape[-1]) for x in xs], -1)
    return expmap0(v, c)


def beta_split(x, sizes, c):
    n = x.shape[-1]
    v = logmap0(_a(x), c)
    out, start = [], 0
    for m in sizes:
        out.append(expmap0(v[..., start : start + m] * beta_n(m) / beta_n(n), c))
        start += m
    return out


def conv1d(x, z, r, c, stride=1, pad=(0, 0), dilation=1):
    """HNN++ §3.4 by loops: β-concat of each receptive field, then the FC layer. x (L, C_in)."""
    x = _a(x)
    ch = x.shape[1]
    xp = np.concatenate([np.zeros((pad[0], ch)), x, np.zeros((pad[1], ch))])
    k = z.shape[1]
    span = dilation * (k - 1)
    outs = []
    for t in range(0, xp.shape[0] - span, stride):
        window = [xp[t + j * dilation][None] for j in range(k)]
        point = beta_concat(window, c)
        outs.append(hnnpp_fc(point, _a(z).reshape(z.shape[0], -1), r, c)[0])
    return np.stack(outs)


def gyromidpoint(xs, w, c):
    """HNN++ eq. for the Möbius gyromidpoint: ½ ⊗ (Σ w λ x / Σ |w| (λ − 1))."""
    lx = lam(xs, c)[:, 0]
    m = np.sum((w * lx)[:, None] * xs, 0) / np.sum(np.abs(w) * (lx - 1))
    n = np.linalg.norm(m)
    if n == 0:
        return m
    return np.tanh(0.5 * np.arctanh(np.sqrt(c) * n)) * m / (np.sqrt(c) * n)


def attention(params, x, ctx, c, mask=None):
    """HNN++ Poincaré multi-head attention by loops, for one sequence x (Lq, n), ctx (Lk, m)."""
    p = {
        k: ({kk: _a(vv) for kk, vv in v.items()} if isinstance(v, dict) else _a(v))
        for k, v in params.items()
    }
    heads = p["tau"].shape[0]
    n = p["q"]["z"].shape[0]
    sizes = [n // heads] * heads
    qs = beta_split(hnnpp_fc(x, p["q"]["z"], p["q"]["r"], c), sizes, c)
    ks = beta_split(hnnpp_fc(ctx, p["k"]["z"], p["k"]["r"], c), sizes, c)
    vs = beta_split(hnnpp_fc(ctx, p["v"]["z"], p["v"]["r"], c), sizes, c)
    lq, lk = x.shape[0], ctx.shape[0]
    alpha = np.zeros((heads, lq, lk))
    mids = np.zeros((heads, lq, n // heads))
    for h in range(heads):
        for i in range(lq):
            s = np.array([-p["tau"][h] * dist(qs[h][i], ks[h][j], c) for j in range(lk)])
            keep = (
                np.ones(lk, bool) if mask is None else np.broadcast_to(mask, (heads, lq, lk))[h, i]
            )
            if keep.any():
                e = np.where(keep, np.exp(s - s[keep].max()), 0)
                alpha[h, i] = e / e.sum()
                mids[h, i] = gyromidpoint(vs[h], alpha[h, i], c)
    merged = np.stack(
        [beta_concat([mids[h, i][None] for h in range(heads)], c)[0] for i in range(lq)]
    )
    return hnnpp_fc(merged, p["o"]["z"], p["o"]["r"], c), alpha


def lorentz_linear(params, x, c, eps=0.1):
    """Chen et al. 2022 §3.2 with the time offset (1 + ε)/√c."""
    w, b, ls = _a(params["weight"]), _a(params["bias"]), float(params["log_scale"])
    xs = _a(x)[..., 1:]
    x0 = np.sqrt(1 / c + np.sum(xs * xs, -1, keepdims=True))
    h = np.concatenate([x0, xs], -1) @ w.T + b
    y0 = np.exp(ls) / (1 + np.exp(-h[..., :1])) + (1 + eps) / np.sqrt(c)
    hs = h[..., 1:]
    ys = np.sqrt(y0**2 - 1 / c) * hs / np.linalg.norm(hs, axis=-1, keepdims=True)
    return np.concatenate([y0, ys], -1)


def lorentz_from_space(ys, c):
    return np.concatenate([np.sqrt(1 / c + np.sum(ys * ys, -1, keepdims=True)), ys], -1)


def lorentz_norm(params, x, c, eps=1e-5):
    s = _a(x)[..., 1:]
    mu = s.mean(-1, keepdims=True)
    var = s.var(-1, keepdims=True)
    ys = (s - mu) / np.sqrt(var + eps) * _a(params["gamma"]) + _a(params["beta"])
    return lorentz_from_space(ys, c)


def _log_normal(v, scale):
    scale = np.broadcast_to(_a(scale), v.shape)
    return np.sum(-0.5 * (v / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi), -1)


def wrapped_normal_log_prob_ball(z, mu, scale, c):
    """Mathieu et al. 2019 with Σ = (2·scale)², u = λ_μ log_μ z (metric at 0 = 4I)."""
    z, mu = _a(z), _a(mu)
    d = z.shape[-1]
    s = mobius_add(-mu, z, c)
    sn = np.linalg.norm(s, axis=-1, keepdims=True)
    u = np.arctanh(np.sqrt(c) * sn) * s / (np.sqrt(c) * sn) * 2  # λ_μ log_μ z
    r = np.linalg.norm(u, axis=-1)
    sc = 2 * np.broadcast_to(_a(scale), u.shape)
    return _log_normal(u, sc) - (d - 1) * np.log(np.sinh(np.sqrt(c) * r) / (np.sqrt(c) * r))


def _minkowski(u, v):
    return -u[..., 0] * v[..., 0] + np.sum(u[..., 1:] * v[..., 1:], -1)


def wrapped_normal_log_prob_lorentz(z, mu, scale, c):
    """Nagano et al. 2019 (curvature −c): v = PT_{μ→o}(log_μ z)."""
    z, mu = _a(z), _a(mu)
    d = z.shape[-1] - 1
    alpha = -c * _minkowski(mu, z)
    r = np.arccosh(alpha) / np.sqrt(c)
    diff = z - alpha[..., None] * mu
    u = r[..., None] * diff / np.sqrt(_minkowski(diff, diff))[..., None]
    o = np.zeros_like(mu)
    o[..., 0] = 1 / np.sqrt(c)
    coef = c * _minkowski(o, u) / (1 - c * _minkowski(mu, o))
    v = u + coef[..., None] * (mu + o)
    return _log_normal(v[..., 1:], scale) - (d - 1) * np.log(
        np.sinh(np.sqrt(c) * r) / (np.sqrt(c) * r)
    )
