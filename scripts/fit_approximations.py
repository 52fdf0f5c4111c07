#!/usr/bin/env python3
"""Fits the polynomial coefficients of src/exec/approx/piecewise.rs (pure Python, no
dependencies): near-minimax fits by Lawson's iteratively reweighted least squares in the
Chebyshev basis, printed as monomial coefficients in the normalised variable with the fit's
maximum error over a dense sample. Run: python3 scripts/fit_approximations.py"""
import math


def solve(a, b):
    n = len(a)
    m = [row[:] + [v] for row, v in zip(a, b)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        for r in range(n):
            if r != i:
                f = m[r][i] / m[i][i]
                for c in range(i, n + 1):
                    m[r][c] -= f * m[i][c]
    return [m[i][n] / m[i][i] for i in range(n)]


def chebyshev(z, d):
    t = [1.0, z]
    for _ in range(2, d + 1):
        t.append(2 * z * t[-1] - t[-2])
    return t[: d + 1]


def monomial(c):
    """Chebyshev coefficients to monomial ones."""
    d = len(c) - 1
    t = [[1.0], [0.0, 1.0]]
    for j in range(2, d + 1):
        a = [0.0] + [2 * v for v in t[j - 1]]
        b = t[j - 2] + [0.0] * (len(a) - len(t[j - 2]))
        t.append([x - y for x, y in zip(a, b)])
    m = [0.0] * (d + 1)
    for j in range(d + 1):
        for i, v in enumerate(t[j]):
            m[i] += c[j] * v
    return m


def minimax(points, target, weight, d, iters=60):
    """Coefficients c (monomial in z) minimising max |weight(p) (sum c_k z^k) - target(p)|
    over points p = (z, ...)."""
    feats = [[weight(p) * t for t in chebyshev(p[0], d)] for p in points]
    y = [target(p) for p in points]
    w = [1.0 / len(points)] * len(points)
    for _ in range(iters):
        a = [[sum(w[i] * feats[i][r] * feats[i][s] for i in range(len(points))) for s in range(d + 1)] for r in range(d + 1)]
        b = [sum(w[i] * feats[i][r] * y[i] for i in range(len(points))) for r in range(d + 1)]
        c = solve(a, b)
        err = [abs(sum(ci * fi for ci, fi in zip(c, feats[i])) - y[i]) for i in range(len(points))]
        total = sum(wi * ei for wi, ei in zip(w, err))
        w = [wi * ei / total for wi, ei in zip(w, err)]
    return monomial(c), max(err)


def even_fit(name, g, t, d, n=400):
    """g (even) on [-t, t] as a polynomial in w = 2 (x/t)^2 - 1."""
    xs = [t * i / n for i in range(n + 1)]
    points = [(2 * (x / t) ** 2 - 1, x) for x in xs]
    c, e = minimax(points, lambda p: g(p[1]), lambda p: 1.0, d)
    print(f"{name}: even in w = 2(x/{t})^2 - 1, degree {d}, max error {e:.2e}")
    print("    [" + ", ".join(f"{v:.12e}" for v in c) + "]")


def exp_fit(cutoff, squarings, d, n=400):
    """p(z) ~ e^(16 z / 2^squarings) on z in [-cutoff/16, 0] in relative error, as a
    polynomial in v = 1 + 32 z / cutoff... kept in z itself (|z| < 1)."""
    lo = -cutoff / 16
    a = 16 / 2**squarings
    points = [(lo * i / n,) for i in range(n + 1)]
    # Chebyshev basis needs [-1, 1]: fit in s = 2 z / lo - 1, then substitute.
    pts = [(2 * p[0] / lo - 1, p[0]) for p in points]
    c, e = minimax(pts, lambda p: 1.0, lambda p: math.exp(-a * p[1]), d)
    # c is in s = (2/lo) z - 1: expand to monomials in z.
    k = 2 / lo
    mono = [0.0] * (d + 1)
    for j, cj in enumerate(c):
        # (k z - 1)^j
        for i in range(j + 1):
            mono[i] += cj * math.comb(j, i) * k**i * (-1) ** (j - i)
    final = max(abs((1 + e) ** (2**squarings) - 1), abs((1 - e) ** (2**squarings) - 1))
    print(f"exp: z = x/16 on [{lo}, 0], degree {d}, then {squarings} squarings: relative error {e:.2e} -> {final:.2e}; cutoff e^-{cutoff} = {math.exp(-cutoff):.1e}")
    print("    [" + ", ".join(f"{v:.12e}" for v in mono) + "]")


def half_to_one_fit(name, g, d, n=400):
    """g on m in [0.5, 1] as a polynomial in v = 4m - 3, in relative error."""
    points = [(-1 + 2 * i / n, 0.75 + 0.25 * (-1 + 2 * i / n)) for i in range(n + 1)]
    c, e = minimax(points, lambda p: 1.0, lambda p: 1 / g(p[1]), d)
    print(f"{name}: on m in [0.5, 1] in v = 4m - 3, degree {d}, max relative error {e:.2e}")
    print("    [" + ", ".join(f"{v:.12e}" for v in c) + "]")


def clamped_fits(name, f, odd, t, big, dm, dd, n=400):
    """The two pieces of src/exec/approx/clamped.rs for a function split as f(x) =
    F_inner(clamp(x, -t, t)) + F_outer(excess), excess = |x| - t clamped to [0, big - t]:
    the inner piece in w = 2 (x/t)^2 - 1, the outer f(t + s) - f(t) in z = 2 s/(big - t) - 1.
    For an odd f, each piece carries a factor: x/t inside, s/(big - t) outside."""
    xs = [t * i / n for i in range(n + 1)]
    inner = [(2 * (x / t) ** 2 - 1, x) for x in xs]
    weight = (lambda p: p[1] / t) if odd else (lambda p: 1.0)
    c, e = minimax(inner, lambda p: f(p[1]), weight, dm)
    print(f"{name} inner: |x| <= {t} in w = 2(x/{t})^2 - 1, degree {dm}{' times x/t' if odd else ''}, max error {e:.2e}")
    print("    [" + ", ".join(f"{v:.12e}" for v in c) + "]")
    width = big - t
    outer = [(2 * s / width - 1, s) for s in (width * i / n for i in range(n + 1))]
    weight = (lambda p: p[1] / width) if odd else (lambda p: 1.0)
    c, e = minimax(outer, lambda p: f(t + p[1]) - f(t), weight, dd)
    print(f"{name} outer: {t} <= |x| <= {big} in z = 2(|x| - {t})/{width} - 1, degree {dd}{' times the excess/width' if odd else ''}, max error {e:.2e}")
    print("    [" + ", ".join(f"{v:.12e}" for v in c) + "]")


SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
sigmoid = lambda x: 1 / (1 + math.exp(-x))
gelu = lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2)))
gelu_tanh = lambda x: 0.5 * x * (1 + math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))

if __name__ == "__main__":
    even_fit("gelu - x/2", lambda x: gelu(x) - 0.5 * x, 4.0, 8)
    even_fit("gelu_tanh - x/2", lambda x: gelu_tanh(x) - 0.5 * x, 4.0, 8)
    exp_fit(10.0, 2, 6)
    half_to_one_fit("rsqrt", lambda m: m**-0.5, 6)
    half_to_one_fit("reciprocal", lambda m: 1 / m, 6)
    clamped_fits("silu - x/2", lambda x: x * sigmoid(x) - x / 2, False, 2.0, 10.0, 4, 8)
    clamped_fits("sigmoid - 1/2", lambda x: sigmoid(x) - 0.5, True, 2.0, 10.0, 3, 5)
