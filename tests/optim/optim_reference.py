"""Independent float64 NumPy references for the Poincaré ball and geoopt's optimizer rules.

Written from the formulas (Ungar's gyrovector space, Ganea et al. 2018, geoopt
``stereographic/math.py`` and ``optim/radam.py`` / ``rsgd.py``), one point per row, without
reusing any spiraljax code.
"""

import numpy as np


def sq(x):
    return np.sum(x * x, axis=-1, keepdims=True)


def lam(x, c):
    return 2.0 / (1.0 - c * sq(x))


def project(x, c, eps=1e-5):
    if c == 0:
        return x
    n = np.sqrt(sq(x))
    maxnorm = (1 - eps) / np.sqrt(c)
    return np.where(n > maxnorm, x / np.maximum(n, 1e-300) * maxnorm, x)


def mobius_add(x, y, c):
    xy = np.sum(x * y, axis=-1, keepdims=True)
    num = (1 + 2 * c * xy + c * sq(y)) * x + (1 - c * sq(x)) * y
    return num / (1 + 2 * c * xy + c * c * sq(x) * sq(y))


def expmap(x, u, c):
    un = np.sqrt(sq(u))
    safe = np.where(un > 0, un, 1.0)
    sc = np.sqrt(c)
    second = np.where(un > 0, np.tanh(sc * lam(x, c) * safe / 2) * u / (sc * safe), 0.0)
    return project(mobius_add(x, second, c), c)


def gyration(a, b, w, c):
    ab = np.sum(a * b, -1, keepdims=True)
    aw = np.sum(a * w, -1, keepdims=True)
    bw = np.sum(b * w, -1, keepdims=True)
    alpha = -c * c * aw * sq(b) + c * bw + 2 * c * c * ab * bw
    beta = -c * c * bw * sq(a) - c * aw
    delta = 1 + 2 * c * ab + c * c * sq(a) * sq(b)
    return w + 2 * (alpha * a + beta * b) / delta


def transp(x, y, v, c):
    return gyration(y, -x, v, c) * lam(x, c) / lam(y, c)


def dist(x, y, c):
    s = mobius_add(-x, y, c)
    return 2 / np.sqrt(c) * np.arctanh(np.sqrt(c) * np.sqrt(sq(s)))[..., 0]


def retract(x, u, c, retraction):
    return expmap(x, u, c) if retraction == "expmap" else project(x + u, c)


def run_adam(x, egrad_fn, lrs, c, b1=0.9, b2=0.999, eps=1e-8, amsgrad=False, retraction="expmap"):
    """geoopt RiemannianAdam (with the 2026 pre-projection), one scalar v per row."""
    m = np.zeros_like(x)
    v = np.zeros((*x.shape[:-1], 1))
    v_max = np.zeros_like(v)
    for t, lr in enumerate(lrs, start=1):
        x = project(x, c)
        rg = egrad_fn(x) / lam(x, c) ** 2
        m = b1 * m + (1 - b1) * rg
        v = b2 * v + (1 - b2) * lam(x, c) ** 2 * sq(rg)
        v_max = np.maximum(v_max, v)
        denom = np.sqrt((v_max if amsgrad else v) / (1 - b2**t)) + eps
        direction = m / (1 - b1**t) / denom
        y = retract(x, -lr * direction, c, retraction)
        m = transp(x, y, m, c)
        x = y
    return x


def run_sgd(x, egrad_fn, lrs, c, momentum=0.0, nesterov=False, retraction="expmap"):
    """geoopt RiemannianSGD with the momentum buffer started at zero."""
    buf = np.zeros_like(x)
    for lr in lrs:
        x = project(x, c)
        rg = egrad_fn(x) / lam(x, c) ** 2
        if momentum > 0:
            buf = momentum * buf + rg
            d = rg + momentum * buf if nesterov else buf
            y = retract(x, -lr * d, c, retraction)
            buf = transp(x, y, buf, c)
        else:
            y = retract(x, -lr * rg, c, retraction)
        x = y
    return x
