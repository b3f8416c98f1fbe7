"""Procedural RGB faces with known attributes: the embedded default image dataset.

Every face is drawn from its own random stream ``np.random.default_rng([seed, index])``,
so image ``i`` of seed ``s`` never depends on how many images are made or in what
order. Binary attributes (``ATTRIBUTES``) are independent fair coins; everything else
(face shape, size, pose, skin, lighting, background, eyes, brows, mouth, hair style,
glasses frames...) varies continuously. Forcing an attribute re-renders the very same
face with only that attribute changed, which lets metrics check e.g. that a hair
translation kept the rest of the face.

Rendering is vectorised numpy over a batch: every shape is a signed distance field in
the face's own (rotated, scaled) frame, turned into anti-aliased pixel coverage.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch

ATTRIBUTES: tuple[str, ...] = ("glasses", "blond", "smiling")

# Bump when the drawing changes, so stale caches are ignored.
GENERATOR_VERSION = 2
MIN_SIZE = 16
_N_UNIFORMS = 96  # random numbers drawn per face
_ATTR_SLOTS = 8   # the first ones decide the attributes (room to add some without moving the rest)
_CHUNK = 32       # faces rendered together (bounded memory)

_SKIN_RAMP = np.array([
    [255, 226, 204], [243, 200, 168], [226, 176, 136], [196, 141, 102],
    [160, 108, 74], [124, 82, 56], [96, 63, 45],
], dtype=np.float32) / 255.0


# --------------------------------------------------------------------------- parameters

def _hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (h in turns) -> RGB (N,3) float32."""
    h = np.mod(h, 1.0) * 6.0
    i = np.floor(h)
    f = h - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def _uniforms(indices: np.ndarray, seed: int) -> np.ndarray:
    out = np.empty((len(indices), _N_UNIFORMS), dtype=np.float64)
    for row, idx in enumerate(indices):
        out[row] = np.random.default_rng([seed, int(idx)]).random(_N_UNIFORMS)
    return out


class _Draw:
    """Hands out the columns of the per-face uniform matrix in a fixed order."""

    def __init__(self, u: np.ndarray) -> None:
        self.u, self.k = u, _ATTR_SLOTS

    def __call__(self, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        col = self.u[:, self.k]
        self.k += 1
        return (lo + (hi - lo) * col).astype(np.float32)

    def choice(self, n: int) -> np.ndarray:
        return np.minimum((self(0.0, 1.0) * n).astype(np.int64), n - 1)


def _params(u: np.ndarray, attrs: np.ndarray) -> dict[str, np.ndarray]:
    """Map uniforms (N,K) and attributes (N,A) to drawing parameters (each (N,) or (N,3))."""
    d = _Draw(u)
    n = len(u)
    p: dict[str, np.ndarray] = {}
    # pose and face shape
    p["cx"], p["cy"] = d(-0.08, 0.08), d(0.03, 0.12)
    p["scale"] = d(0.54, 0.64)
    p["rot"] = d(-0.2, 0.2)
    p["fa"] = d(0.72, 0.88)            # face half-width (half-height is 1)
    p["jaw"] = d(0.0, 0.22)            # chin narrowing
    # skin and light
    t = d(0.0, 1.0) * (len(_SKIN_RAMP) - 1)
    lo = np.minimum(t.astype(np.int64), len(_SKIN_RAMP) - 2)
    w = (t - lo)[:, None]
    skin = _SKIN_RAMP[lo] * (1 - w) + _SKIN_RAMP[lo + 1] * w
    skin = skin * (1 + np.stack([d(-0.04, 0.04), d(-0.04, 0.04), d(-0.05, 0.05)], 1))
    p["skin"] = np.clip(skin, 0, 1).astype(np.float32)
    lx, ly = d(-0.8, 0.8), d(-0.7, 0.5)
    ln = np.sqrt(lx * lx + ly * ly + 1.0)
    p["lx"], p["ly"], p["lz"] = lx / ln, ly / ln, 1.0 / ln
    p["amb"] = d(0.5, 0.68)
    p["dif"] = (1.05 - p["amb"]) * 1.15
    # background: two colours and a direction
    p["bg1"] = _hsv(d(), d(0.05, 0.55), d(0.35, 0.95))
    p["bg2"] = _hsv(d(), d(0.05, 0.55), d(0.35, 0.95))
    p["bgdir"] = d(0, 2 * np.pi)
    p["vignette"] = d(0.0, 0.25)
    # clothes
    p["cloth"] = _hsv(d(), d(0.2, 0.8), d(0.3, 0.85))
    p["shoulder"] = d(1.35, 1.75)
    p["neckw"] = d(0.24, 0.32)
    # eyes
    p["ex"], p["ey"] = d(0.29, 0.37), d(-0.06, 0.06)
    p["erx"], p["ery"] = d(0.11, 0.15), d(0.055, 0.085)
    p["iris"] = _hsv(d(0.05, 0.55), d(0.35, 0.8), d(0.2, 0.6))
    p["irr"] = d(0.045, 0.062)
    p["gx"], p["gy"] = d(-0.035, 0.035), d(-0.015, 0.015)
    # brows
    p["bdy"] = d(0.15, 0.24)           # above the eye centre
    p["bw"], p["bth"] = d(0.1, 0.16), d(0.025, 0.05)
    p["btilt"], p["bcurv"] = d(-0.35, 0.35), d(0.5, 3.0)
    # nose
    p["ny"], p["nw"] = d(0.26, 0.36), d(0.05, 0.09)
    # mouth
    p["my"], p["mw"] = d(0.52, 0.62), d(0.19, 0.27)
    p["mth"] = d(0.022, 0.036)
    p["lip"] = d(0.3, 0.6)             # how red the lips are
    frown = d() < 0.3
    neutral_c = np.where(frown, d(-0.13, -0.07), d(-0.025, 0.025))
    smile_c = d(0.09, 0.15)
    p["mopen_h"] = d(0.18, 0.27)
    p["teeth"] = d(0.55, 0.75)
    # glasses
    p["gshape"] = d.choice(3)          # round, rounded rectangle, wide oval
    p["gr"] = d(0.0, 1.0)              # size within the range allowed by the eye spacing
    p["gt"] = d(0.05, 0.085)          # frame thickness
    dark = d() < 0.65
    p["gcol"] = np.where(dark[:, None], _hsv(d(), d(0, 0.5), d(0.03, 0.22)),
                         _hsv(d(), d(0.6, 0.95), d(0.45, 0.85)))
    p["gsun"] = (d() < 0.25).astype(np.float32)
    # hair
    p["hstyle"] = d.choice(5)          # short, bob, long, curly, bun
    p["hv"], p["hvtop"] = d(0.05, 0.15), d(0.08, 0.24)
    p["hfringe"] = d(-0.6, -0.36)
    p["hside"] = d(0.15, 0.5)
    p["hpart"] = d(-0.3, 0.3)
    p["hlen"] = d(0.4, 0.85)           # bob length
    p["hwide"] = d(0.12, 0.26)         # bob / long hair width beyond the face
    p["hcurlR"], p["hcurlN"], p["hcurlP"] = d(1.22, 1.42), np.floor(d(8, 14)), d(0, 2 * np.pi)
    p["hbun"] = d(0.24, 0.34)
    p["hstrands"], p["hphase"] = np.floor(d(12, 22)), d(0, 2 * np.pi)
    black = _hsv(d(0.03, 0.09), d(0.2, 0.6), d(0.05, 0.2))
    blond = _hsv(d(0.11, 0.15), d(0.38, 0.7), d(0.8, 0.97))
    # attributes only select between values drawn above, so forcing one changes nothing else
    g, b, s = (attrs[:, i].astype(bool) for i in range(3))
    p["glasses"] = g.astype(np.float32)
    p["hair"] = np.where(b[:, None], blond, black).astype(np.float32)
    p["smiling"] = s.astype(np.float32)
    p["mcurv"] = np.where(s, smile_c, neutral_c).astype(np.float32)
    p["mopen"] = s.astype(np.float32)              # a smile is an open grin showing teeth
    p["mw"] = np.where(s, p["mw"] * 1.3, p["mw"]).astype(np.float32)
    assert d.k <= _N_UNIFORMS and all(len(v) == n for v in p.values())
    return p


# --------------------------------------------------------------------------- shapes (signed distances)

def _cov(dist: np.ndarray, aa: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of the region dist < 0 (aa = one pixel in the same units)."""
    return np.clip(0.5 - dist / aa, 0.0, 1.0)


def _len(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sqrt(x * x + y * y)  # np.hypot is several times slower


def _ellipse(x: np.ndarray, y: np.ndarray, a: Any, b: Any) -> np.ndarray:
    xa, yb = x / a, y / b
    k0 = _len(xa, yb)
    k1 = _len(xa / a, yb / b)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def _rbox(x: np.ndarray, y: np.ndarray, hx: Any, hy: Any, r: Any) -> np.ndarray:
    qx = np.abs(x) - (hx - r)
    qy = np.abs(y) - (hy - r)
    return _len(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r


def _curve(x: np.ndarray, y: np.ndarray, w: Any, m: Any, k: Any, t: Any = 0.0) -> np.ndarray:
    """Distance to the arc y = m + t*x + k*x^2, |x| <= w (approximate, exact enough for strokes)."""
    xc = np.clip(x, -w, w)
    slope = t + 2 * k * xc
    dy = (y - (m + t * xc + k * xc * xc)) / np.sqrt(1 + slope * slope)
    dx = x - xc
    return _len(dx, dy)


def _blend(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """In place on channel-first img (B,3,H,W): img += alpha*(color-img).

    alpha (B,H,W); color (B,3) per face or (B,3,H,W) per pixel.
    """
    if color.ndim == 2 and img.flags.c_contiguous and alpha.shape == img.shape[:1] + img.shape[2:]:
        # small shapes: touch only the covered pixels
        flat = np.flatnonzero(alpha)
        if len(flat) * 4 < alpha.size:
            hw = img.shape[2] * img.shape[3]
            b, r = np.divmod(flat, hw)
            pix = img.reshape(len(img), 3, hw)
            px = pix[b, :, r]
            px += alpha.reshape(-1)[flat, None] * (color[b] - px)
            pix[b, :, r] = px
            return
        color = color[:, :, None, None]
    img += alpha[:, None] * (color - img)


def _rgb(color: np.ndarray, lum: np.ndarray) -> np.ndarray:
    """Per-face colours (B,3) times a brightness field (B,H,W) -> (B,3,H,W)."""
    return color[:, :, None, None] * lum[:, None]


def _grey(n: int, value: float) -> np.ndarray:
    return np.full((n, 3), value, np.float32)


# --------------------------------------------------------------------------- rendering

class _Frame:
    """Pixel coordinates of some faces (rows of a chunk) in each face's own frame.

    X, Y: face centre at 0, half-height 1, x to the right, y down; AX = |X| for
    symmetric features; aa = one pixel in face units.
    """

    def __init__(self, p: dict[str, np.ndarray], rows: np.ndarray, u: np.ndarray, v: np.ndarray,
                 size: int) -> None:
        self.p, self.rows = p, rows
        s = self["scale"]
        rot = self["rot"]
        du, dv = u - self["cx"], v - self["cy"]
        cr, sr = np.cos(rot) / s, np.sin(rot) / s
        self.X = du * cr + dv * sr
        self.Y = dv * cr - du * sr
        self.AX = np.abs(self.X)
        self.aa = (2.0 / size) / s
        self.size = size

    def __getitem__(self, key: str) -> np.ndarray:
        a = self.p[key][self.rows]
        return a[:, None, None] if a.ndim == 1 else a

    def crop(self, ys: slice, xs: slice) -> "_Frame":
        f = object.__new__(_Frame)
        f.p, f.rows, f.size, f.aa = self.p, self.rows, self.size, self.aa
        f.X, f.Y, f.AX = self.X[:, ys, xs], self.Y[:, ys, xs], self.AX[:, ys, xs]
        return f

    def subset(self, mask: np.ndarray) -> "_Frame":
        f = object.__new__(_Frame)
        f.p, f.rows, f.size = self.p, self.rows[mask], self.size
        f.X, f.Y, f.AX = self.X[mask], self.Y[mask], self.AX[mask]
        f.aa = self.aa[mask]
        return f


def _shade(F: _Frame, nx: np.ndarray, ny: np.ndarray) -> np.ndarray:
    """Brightness of a ball with normal (nx, ny, nz) under the face's light."""
    nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0, 1))
    return F["amb"] + F["dif"] * np.clip(nx * F["lx"] + ny * F["ly"] + nz * F["lz"], 0, 1)


def _corners(p: dict[str, np.ndarray], size: int, box: tuple[float, float, float, float]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixel bounds (x lo, x hi, y lo, y hi) per face of the face-frame box (x0, x1, y0, y1)."""
    x0, x1, y0, y1 = box
    cx = np.array([x0, x1, x0, x1], np.float32)
    cy = np.array([y0, y0, y1, y1], np.float32)
    s, cr, sr = p["scale"][:, None], np.cos(p["rot"])[:, None], np.sin(p["rot"])[:, None]
    u = (p["cx"][:, None] + s * (cx * cr - cy * sr) + 1) * (size / 2)
    v = (p["cy"][:, None] + s * (cx * sr + cy * cr) + 1) * (size / 2)
    return (np.floor(u.min(1)) - 1, np.ceil(u.max(1)) + 1, np.floor(v.min(1)) - 1, np.ceil(v.max(1)) + 1)


def _union(p: dict[str, np.ndarray], size: int, box: tuple[float, float, float, float]
           ) -> tuple[slice, slice]:
    """Image slices (rows, cols) covering `box` for every face of the chunk."""
    ul, uh, vl, vh = _corners(p, size, box)

    def sl(lo: np.ndarray, hi: np.ndarray) -> slice:
        return slice(int(np.clip(lo.min(), 0, size)), int(np.clip(hi.max(), 0, size)))
    return sl(vl, vh), sl(ul, uh)


def _window(p: dict[str, np.ndarray], size: int, box: tuple[float, float, float, float]
            ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per-face pixel origin (oy, ox) and common height/width of windows covering `box`."""
    ul, uh, vl, vh = _corners(p, size, box)

    def span(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, int]:
        n = int(min(size, (hi - lo).max()))
        return np.clip(lo, 0, size - n).astype(np.int64), n
    ox, w = span(ul, uh)
    oy, h = span(vl, vh)
    return oy, ox, h, w


def _render_chunk(p: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Draw the faces of one chunk, back to front: float32 (B,3,size,size), about [0,1]."""
    every = np.arange(len(p["cx"]))
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1     # pixel centres in [-1,1]
    u, v = c[None, None, :], c[None, :, None]
    F = _Frame(p, every, u, v, size)
    X, Y, aa = F.X, F.Y, F.aa

    # background gradient with vignette
    bd = F["bgdir"]
    g = np.clip((u * np.cos(bd) + v * np.sin(bd)) * 0.5 + 0.5, 0, 1)
    vig = 1 - F["vignette"] * (u * u + v * v) * 0.5
    img = _rgb(p["bg1"], vig) + _rgb(p["bg2"] - p["bg1"], g * vig)

    lx, ly, amb = F["lx"], F["ly"], F["amb"]
    fa = F["fa"]
    skin = p["skin"]
    style = p["hstyle"]

    # hair colour field: ball shading, a glossy sheen and strands radiating from the crown
    hv, hvtop = F["hv"], F["hvtop"]
    hnx, hny = X / (fa + hv + 0.25), (Y + 0.1) / (1.25 + hvtop)
    hlum = _shade(F, hnx, hny)
    sx, sy = hnx - lx * 0.6, hny - ly * 0.6
    sheen = np.exp((sx * sx + sy * sy) * -14.0) * 0.2
    ns = F["hstrands"]
    period_px = np.pi * 1.2 * F["scale"] * size / 2 / ns
    amp = 0.08 * np.clip((period_px - 2.0) / 2.0, 0, 1)
    hlum *= 1 + amp * np.sin(ns * np.arctan2(X, Y + 1.2) * 2 + F["hphase"])
    hair = _rgb(p["hair"], hlum) + sheen[:, None]

    # --- shoulders / clothes
    ys, xs = _union(p, size, (-1.8, 1.8, 1.18, 2.8))
    R = F.crop(ys, xs)
    sh = F["shoulder"]
    d_sh = _ellipse(R.X, R.Y - 2.0, sh, 0.78)
    clo = _rgb(p["cloth"], _shade(F, R.X / (sh + 0.3), (R.Y - 2.0) / 1.6))
    _blend(img[:, :, ys, xs], _cov(d_sh, aa), clo)

    # --- hair behind the head, one style at a time
    d_skull = _ellipse(X, Y - 0.05, fa + hv, 1.0 + hvtop)   # hair volume around the skull
    d_back = np.maximum(d_skull, Y - 0.05)                  # short: just the skull
    for k in (1, 2, 3, 4):
        m = style == k
        if not m.any():
            continue
        S = F.subset(m)
        Xs, Ys, dsk = S.X, S.Y, d_skull[m]
        if k == 1:      # bob
            hlen = S["hlen"]
            box = _rbox(Xs, Ys - (hlen - 0.6) / 2, S["fa"] + S["hwide"], (hlen + 0.6) / 2, 0.18)
            d = np.minimum(dsk, box)
        elif k == 2:    # long, flaring a little
            flare = np.clip(Ys - 0.3, 0, None) * 0.12
            d = np.minimum(dsk, _rbox(Xs, Ys - 0.85, S["fa"] + S["hwide"] + flare, 1.55, 0.2))
        elif k == 3:    # curly: bumpy disc
            ang = np.arctan2(Ys + 0.15, Xs)
            rad = S["hcurlR"] * (1 + 0.045 * np.sin(S["hcurlN"] * ang + S["hcurlP"]))
            d = _len(Xs * 1.05, (Ys + 0.15) * 0.97) - rad
            d_skull[m] = d                                  # the curls also frame the forehead
        else:           # bun on top
            r = S["hbun"]
            d = np.minimum(d_back[m], _len(Xs, Ys + 1.0 + S["hvtop"] + r * 0.55) - r)
        d_back[m] = d
    _blend(img, _cov(d_back, aa) * 0.98, hair * 0.82)       # back hair is a little darker

    # --- neck (skin, shadowed under the chin)
    ys, xs = _union(p, size, (-0.75, 0.75, 0.5, 1.4))
    R = F.crop(ys, xs)
    nw = F["neckw"]
    d_neck = _rbox(R.X, R.Y - 0.95, nw + np.clip(R.Y - 1.15, 0, None) * 0.25, 0.42, 0.1)
    neck_lum = (0.62 + 0.18 * np.clip((R.Y - 0.75) * 2.0, 0, 1)) * (amb / 0.6)
    _blend(img[:, :, ys, xs], _cov(d_neck, aa), _rgb(skin, neck_lum))

    # --- ears (hidden under bob, long and curly hair)
    m = (style == 0) | (style == 4)
    if m.any():
        ys, xs = _union(p, size, (-1.02, 1.02, -0.14, 0.3))
        S = F.crop(ys, xs).subset(m)
        sub = img[m, :, ys, xs]
        ex_ = S.AX - S["fa"]
        d_ear = _ellipse(ex_ + S["fa"] * 0.02, S.Y - 0.08, 0.11, 0.19)
        lum = _shade(S, np.clip(ex_ * 2.5, -1, 1) * 0.5, S.Y * 0.3) * 0.9
        _blend(sub, _cov(d_ear, S.aa), _rgb(skin[m], lum))
        img[m, :, ys, xs] = sub

    # --- face (egg-shaped ellipse, narrower at the chin)
    ys, xs = _union(p, size, (-0.9, 0.9, -1.0, 1.0))
    R = F.crop(ys, xs)
    fw = fa * (1 - F["jaw"] * np.clip(R.Y, 0, 1) ** 2)
    face_a = _cov(_ellipse(R.X, R.Y, fw, 1.0), aa)
    _blend(img[:, :, ys, xs], face_a, _rgb(skin, _shade(F, R.X / (fa + 0.15), R.Y / 1.15)))

    # --- hair over the forehead: the skull volume above a hairline with a part and temples
    ys, xs = _union(p, size, (-1.5, 1.5, -1.7, 0.4))
    R = F.crop(ys, xs)
    hl = F["hfringe"] + F["hside"] * (R.X / fa) ** 2 + F["hpart"] * R.X * 0.5
    hl -= 0.08 * (style == 3)[:, None, None]
    d_cap = np.maximum(np.maximum(d_skull[:, ys, xs], R.Y - hl), R.Y - 0.3)
    rim = np.clip(d_cap * (-1 / 0.12), 0, 1) * 0.2 + 0.8    # darker where hair meets skin
    _blend(img[:, :, ys, xs], _cov(d_cap, aa), hair[:, :, ys, xs] * rim[:, None])

    # inner face features are drawn in a window around the face
    oy, ox, h, w = _window(p, size, (-0.92, 0.92, -0.45, 1.0))
    wy = oy[:, None, None] + np.arange(h)[None, :, None]
    wx = ox[:, None, None] + np.arange(w)[None, None, :]
    rows = every[:, None, None]
    win = np.stack([img[:, ch][rows, wy, wx] for ch in range(3)], axis=1)
    W = _Frame(p, every, c[wx], c[wy], size)
    fw = W["fa"] * (1 - W["jaw"] * np.clip(W.Y, 0, 1) ** 2)
    _draw_features(W, win, _cov(_ellipse(W.X, W.Y, fw, 1.0), W.aa))
    for ch in range(3):
        img[:, ch][rows, wy, wx] = win[:, ch]
    return img


def _draw_features(F: _Frame, img: np.ndarray, face_a: np.ndarray) -> None:
    """Cheeks, eyes, brows, nose, mouth and glasses, in place on the window `img`."""
    p = F.p
    B = len(F.rows)
    X, Y, AX, aa = F.X, F.Y, F.AX, F.aa
    skin = p["skin"]
    ex, ey = F["ex"], F["ey"]

    # cheeks: faint blush, stronger when smiling
    cy_ = Y - ey - 0.3
    d_cheek = _len(AX - ex - 0.05, cy_) - 0.13
    blush = np.clip(0.5 - d_cheek * 2.0, 0, 1) * face_a * (0.1 + 0.2 * F["smiling"])
    _blend(img, blush, np.repeat(np.array([[0.9, 0.35, 0.35]], np.float32), B, 0))

    # eyes: white, iris, pupil, highlight, lid line
    erx, ery = F["erx"], F["ery"]
    d_eye = _ellipse(AX - ex, Y - ey, erx, ery)
    eye_a = _cov(d_eye, aa)
    _blend(img, eye_a, _grey(B, 0.93))
    IX = np.abs(X - F["gx"]) - ex
    IY = Y - ey - F["gy"]
    irr = F["irr"]
    di = _len(IX, IY)
    _blend(img, _cov(di - irr, aa) * eye_a, p["iris"])
    _blend(img, _cov(di - irr * 0.5, aa) * eye_a, _grey(B, 0.04))
    _blend(img, _cov(_len(IX + irr * 0.35, IY + irr * 0.35) - irr * 0.25, aa) * eye_a, _grey(B, 1.0))
    _blend(img, _cov(np.abs(d_eye) - 0.012, aa) * (Y < ey + ery * 0.3), skin * 0.35)

    # brows (hair coloured, a bit darker)
    bx = AX - ex - 0.02
    bw = F["bw"]
    d_brow = _curve(bx, Y, bw, ey - F["bdy"], F["bcurv"] * -0.5, F["btilt"] * 0.3) \
        - F["bth"] * (1 - 0.5 * np.minimum((bx / bw) ** 2, 1))
    _blend(img, _cov(d_brow, aa) * face_a, p["hair"] * 0.72 + 0.02)

    # nose: a small darker arc and nostril shadows
    ny, nw = F["ny"], F["nw"]
    _blend(img, _cov(_curve(X, Y, nw, ny, -3.0) - 0.014, aa) * 0.6, skin * 0.55)
    d_nostril = _len((AX - nw * 0.6) * (1 / 1.4), Y - ny + 0.005) - 0.022
    _blend(img, _cov(d_nostril, aa) * 0.5, skin * 0.4)

    # mouth: line y = top(x) with ends lifted by mcurv (smile) or lowered (frown)
    my, mw, mc = F["my"], F["mw"], F["mcurv"]
    lipr = F["lip"][:, :, 0]
    lip = (skin * (1 - lipr) + np.array([0.62, 0.14, 0.2], np.float32) * lipr) * 0.8
    k = -mc / (mw * mw)
    m0 = my + mc * 0.5
    op = p["mopen"][F.rows] > 0
    if op.any():                       # open grin: dark inside, upper teeth, lower lip
        S = F.subset(op)
        sub = img[op]
        Xs, Ys = S.X, S.Y
        hgt, mws, ks, m0s = S["mopen_h"], S["mw"], k[op], m0[op]
        top = m0s + ks * Xs * Xs
        xs = np.minimum((Xs / mws) ** 2, 1)
        bot = top + hgt * (1 - xs)
        open_a = _cov(np.maximum(np.maximum(top - Ys, Ys - bot), S.AX - mws), S.aa)
        _blend(sub, open_a, np.repeat(np.array([[0.35, 0.06, 0.1]], np.float32), len(S.rows), 0))
        teeth = open_a * _cov(Ys - (top + hgt * S["teeth"] * (1 - xs)), S.aa)
        _blend(sub, teeth, _grey(len(S.rows), 0.96))
        d_low = _curve(Xs, Ys, mws * 0.85, m0s + hgt, ks - hgt / (mws * mws)) - S["mth"] * 0.8
        _blend(sub, _cov(d_low, S.aa), lip[op])
        img[op] = sub
    _blend(img, _cov(_curve(X, Y, mw, m0, k) - F["mth"], aa), lip)

    # glasses: lenses (clear or dark), frames, bridge, temple arms
    gm = p["glasses"][F.rows] > 0
    if not gm.any():
        return
    S = F.subset(gm)
    sub = img[gm]
    ex, ey, erx, fa = S["ex"], S["ey"], S["erx"], S["fa"]
    gt = S["gt"]
    lhw = erx + 0.06 + S["gr"] * np.maximum(ex - 0.11 - erx, 0.0)   # lens half width
    gy = ey + 0.01
    lx_, ly_ = S.AX - ex, S.Y - gy
    shape = p["gshape"][S.rows][:, None, None]
    d_lens = np.where(shape == 0, _len(lx_, ly_) - lhw,
                      np.where(shape == 1, _rbox(lx_, ly_, lhw, lhw * 0.72, 0.06),
                               _ellipse(lx_, ly_, lhw * 1.08, lhw * 0.7)))
    sun = S["gsun"]
    _blend(sub, _cov(d_lens, S.aa) * (0.15 + 0.72 * sun),
           np.where(sun[:, :, 0] > 0, np.float32(0.05), np.float32(0.85)) * np.ones((1, 3), np.float32))
    frame = _cov(np.abs(d_lens) - gt * 0.5, S.aa)
    d_bridge = _curve(S.X, S.Y, ex - lhw + gt * 0.3, gy - 0.04, 1.5) - gt * 0.45
    d_arm = _rbox(S.AX - (ex + lhw + fa) * 0.5, S.Y - gy + 0.03, (fa - ex - lhw) * 0.5, gt * 0.4, 0.0)
    frame = np.maximum(np.maximum(frame, _cov(d_bridge, S.aa)), _cov(d_arm, S.aa) * face_a[gm])
    _blend(sub, frame, p["gcol"][S.rows])
    img[gm] = sub


def _as_indices(indices: Sequence[int] | np.ndarray) -> np.ndarray:
    try:
        idx = np.asarray(indices)
    except Exception as e:  # ragged or odd input
        raise DataError(f"face indices must be a 1-D sequence of integers: {e}") from None
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise DataError(f"face indices must be a 1-D sequence of integers, got shape {idx.shape} "
                        f"dtype {idx.dtype}")
    if idx.size and idx.min() < 0:
        raise DataError("face indices must be >= 0")
    return idx.astype(np.int64)


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise DataError(f"face image size must be an integer >= {MIN_SIZE}, got {size!r}")
    return int(size)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"face seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _face_attributes(u: np.ndarray, attributes: dict[str, np.ndarray | bool] | None) -> np.ndarray:
    """Natural attributes from the uniforms, with `attributes` forced by name."""
    attrs = (u[:, :len(ATTRIBUTES)] < 0.5).astype(np.int64)
    for name, value in (attributes or {}).items():
        if name not in ATTRIBUTES:
            raise DataError(f"unknown face attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
        val = np.asarray(value)
        if val.dtype != bool and not (np.issubdtype(val.dtype, np.number) and np.isin(val, (0, 1)).all()):
            raise DataError(f"attribute {name!r} must be a bool or 0/1 (one value or one per face)")
        if val.ndim == 0:
            val = np.full(len(u), val)
        if val.shape != (len(u),):
            raise DataError(f"attribute {name!r} needs a single value or one per face ({len(u)}), "
                            f"got shape {val.shape}")
        attrs[:, ATTRIBUTES.index(name)] = val.astype(bool)
    return attrs


def face_parameters(indices: Sequence[int] | np.ndarray, seed: int = 0,
                    attributes: dict[str, np.ndarray | bool] | None = None
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The drawing parameters of faces `indices` without rendering: ({name: (N,) or (N,3)}, attrs).

    Useful as regression targets, e.g. "hstyle" (0-4: short, bob, long, curly, bun),
    "skin"/"hair"/"bg1"/"bg2"/"cloth" RGB in [0,1], pose "cx", "cy", "scale", "rot".
    """
    idx = _as_indices(indices)
    u = _uniforms(idx, _check_seed(seed))
    attrs = _face_attributes(u, attributes)
    return _params(u, attrs), attrs


def render_faces(indices: Sequence[int] | np.ndarray, seed: int = 0, size: int = 64,
                 attributes: dict[str, np.ndarray | bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render faces `indices` of `seed`: uint8 images (N,size,size,3), int64 attrs (N,len(ATTRIBUTES)).

    `attributes` forces attributes by name (a bool, or one value per face) while every
    other parameter of each face stays the same.
    """
    idx = _as_indices(indices)
    size = _check_size(size)
    u = _uniforms(idx, _check_seed(seed))
    attrs = _face_attributes(u, attributes)
    images = np.empty((len(idx), size, size, 3), dtype=np.uint8)

    def work(start: int) -> None:
        sl = slice(start, start + _CHUNK)
        img = _render_chunk(_params(u[sl], attrs[sl]), size)
        img *= 255.0
        img += 0.5
        np.clip(img, 0, 255, out=img)
        images[sl] = img.transpose(0, 2, 3, 1)

    starts = range(0, len(idx), _CHUNK)
    workers = min(len(starts), os.cpu_count() or 1, 4)
    if workers > 1:  # numpy releases the GIL in its loops; chunks are independent
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, starts))
    else:
        for start in starts:
            work(start)
    return images, attrs


# --------------------------------------------------------------------------- cache and dataset

def faces_cache_dir() -> Path:
    """$GENLAB_CACHE/faces if GENLAB_CACHE is set, else ~/.cache/genlab/faces."""
    env = os.environ.get("GENLAB_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "genlab"
    return root / "faces"


def _cache_name(n: int, size: int, seed: int) -> str:
    return f"faces_v{GENERATOR_VERSION}_seed{seed}_size{size}_n{n}.npz"


def _read_cache(path: Path, n: int, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, attrs = z["images"], z["attributes"]
    except Exception:
        return None  # unreadable or corrupt: regenerate
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (size, size, 3)
            or len(images) < n or attrs.shape != (len(images), len(ATTRIBUTES))):
        return None
    return np.ascontiguousarray(images[:n]), attrs[:n].astype(np.int64)


def _write_cache(path: Path, images: np.ndarray, attrs: np.ndarray) -> None:
    from ..engine.io import atomic_write
    from ..errors import RunDirError

    try:
        with atomic_write(path) as f:
            np.savez_compressed(f, images=images, attributes=attrs)
    except (OSError, RunDirError):  # atomic_write reports a failed write as RunDirError
        pass  # read-only or full disk: caching is only an optimisation


def load_faces(n: int, size: int = 64, seed: int = 0, cache: bool = True,
               cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` faces of `seed` (images uint8 (n,size,size,3), attrs int64 (n,A)), cached as .npz.

    The cache is `cache_dir`, else $GENLAB_CACHE/faces, else ~/.cache/genlab/faces; a
    cached file of at least `n` faces with the same seed and size is reused.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise DataError(f"number of faces must be a positive integer, got {n!r}")
    n, size, seed = int(n), _check_size(size), _check_seed(seed)
    if not cache:
        return render_faces(np.arange(n), seed=seed, size=size)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else faces_cache_dir()
    prefix = f"faces_v{GENERATOR_VERSION}_seed{seed}_size{size}_n"
    candidates: list[tuple[int, Path]] = []
    try:
        for f in folder.glob(prefix + "*.npz"):
            tail = f.name[len(prefix):-4]
            if tail.isdigit() and int(tail) >= n:
                candidates.append((int(tail), f))
    except OSError:
        pass
    for _, f in sorted(candidates):
        got = _read_cache(f, n, size)
        if got is not None:
            return got
    images, attrs = render_faces(np.arange(n), seed=seed, size=size)
    _write_cache(folder / _cache_name(n, size, seed), images, attrs)
    return images, attrs


class FacesDataset:
    """The first `n` faces as tensors: `images` float (N,3,H,W) in [-1,1], `labels` long (N,A)."""

    attribute_names: tuple[str, ...] = ATTRIBUTES

    def __init__(self, n: int = 10000, size: int = 64, seed: int = 0, cache: bool = True,
                 cache_dir: str | Path | None = None) -> None:
        import torch

        images, attrs = load_faces(n, size=size, seed=seed, cache=cache, cache_dir=cache_dir)
        from .images import to_tensor

        self.images = to_tensor(images)
        self.labels = torch.from_numpy(attrs).long()
        self.size, self.seed = size, seed

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: Any) -> tuple["torch.Tensor", "torch.Tensor"]:
        return self.images[i], self.labels[i]
