"""Independent high-precision Poincaré-ball reference (mpmath, 50 digits).

Written from the textbook formulas (Ungar 2008; Ganea et al. 2018), deliberately in a
different form from spiraljax: explicit norms, atanh/tanh/acosh of the full arguments, and
distances from the arccosh formula d = acosh(1 + 2c‖x−y‖²/((1−c‖x‖²)(1−c‖y‖²)))/√c.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 50


def _v(a):
    return [mp.mpf(float(t)) for t in np.asarray(a, dtype=np.float64).ravel()]


def _dot(a, b):
    return mp.fsum(x * y for x, y in zip(a, b, strict=True))


def _norm(a):
    return mp.sqrt(_dot(a, a))


def _scale(s, a):
    return [s * x for x in a]


def _add(a, b):
    return [x + y for x, y in zip(a, b, strict=True)]


def _out(a):
    return np.array([float(x) for x in a])


def mobius_add(x, y, k):
    return _out(_madd_v(_v(x), _v(y), -mp.mpf(k)))


def dist(x, y, k):
    c = -mp.mpf(k)
    x, y = _v(x), _v(y)
    diff = [a - b for a, b in zip(x, y, strict=True)]
    arg = 1 + 2 * c * _dot(diff, diff) / ((1 - c * _dot(x, x)) * (1 - c * _dot(y, y)))
    return float(mp.acosh(arg) / mp.sqrt(c))


def dist0(x, k):
    c = -mp.mpf(k)
    return float(2 * mp.atanh(mp.sqrt(c) * _norm(_v(x))) / mp.sqrt(c))


def expmap0(u, k):
    c = -mp.mpf(k)
    u = _v(u)
    n = _norm(u)
    return _out(_scale(mp.tanh(mp.sqrt(c) * n) / (mp.sqrt(c) * n), u))


def logmap0(y, k):
    c = -mp.mpf(k)
    y = _v(y)
    n = _norm(y)
    return _out(_scale(mp.atanh(mp.sqrt(c) * n) / (mp.sqrt(c) * n), y))


def expmap(x, u, k):
    c = -mp.mpf(k)
    xv, uv = _v(x), _v(u)
    lam = 2 / (1 - c * _dot(xv, xv))
    n = _norm(uv)
    second = _scale(mp.tanh(mp.sqrt(c) * lam * n / 2) / (mp.sqrt(c) * n), uv)
    return _out(_madd_v(xv, second, c))


def _madd_v(x, y, c):
    xy, x2, y2 = _dot(x, y), _dot(x, x), _dot(y, y)
    num = _add(_scale(1 + 2 * c * xy + c * y2, x), _scale(1 - c * x2, y))
    return _scale(1 / (1 + 2 * c * xy + c**2 * x2 * y2), num)


def logmap(x, y, k):
    c = -mp.mpf(k)
    xv, yv = _v(x), _v(y)
    s = _madd_v([-t for t in xv], yv, c)
    n = _norm(s)
    lam = 2 / (1 - c * _dot(xv, xv))
    return _out(_scale(2 / (lam * mp.sqrt(c)) * mp.atanh(mp.sqrt(c) * n) / n, s))


def mobius_scalar_mul(r, x, k):
    c = -mp.mpf(k)
    xv = _v(x)
    n = _norm(xv)
    f = mp.tanh(mp.mpf(float(r)) * mp.atanh(mp.sqrt(c) * n)) / (mp.sqrt(c) * n)
    return _out(_scale(f, xv))


def mobius_matvec(m, x, k):
    c = -mp.mpf(k)
    xv = _v(x)
    mm = np.asarray(m, dtype=np.float64)
    mx = [
        mp.fsum(mp.mpf(float(mm[i, j])) * xv[j] for j in range(len(xv))) for i in range(mm.shape[0])
    ]
    nx, nmx = _norm(xv), _norm(mx)
    f = mp.tanh(nmx / nx * mp.atanh(mp.sqrt(c) * nx)) / (mp.sqrt(c) * nmx)
    return _out(_scale(f, mx))


def gyration(a, b, u, k):
    """gyr[a,b]u = ⊖(a⊕b) ⊕ (a ⊕ (b ⊕ u)) — the definition, not the closed form."""
    c = -mp.mpf(k)
    av, bv, uv = _v(a), _v(b), _v(u)
    ab = _madd_v(av, bv, c)
    return _out(_madd_v([-t for t in ab], _madd_v(av, _madd_v(bv, uv, c), c), c))


def conformal_factor(x, k):
    c = -mp.mpf(k)
    xv = _v(x)
    return float(2 / (1 - c * _dot(xv, xv)))


def mlr_logits(p, a0, x, k):
    """Ganea et al. 2018 eq. 25 with a_k = (1 − c‖p_k‖²) a⁰_k, one (x, class) at a time."""
    c = -mp.mpf(k)
    pv, xv = _v(p), _v(x)
    a = _scale(1 - c * _dot(pv, pv), _v(a0))
    s = _madd_v([-t for t in pv], xv, c)
    lam = 2 / (1 - c * _dot(pv, pv))
    na = _norm(a)
    arg = 2 * mp.sqrt(c) * _dot(s, a) / ((1 - c * _dot(s, s)) * na)
    return float(lam * na / mp.sqrt(c) * mp.asinh(arg))
