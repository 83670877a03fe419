"""Plain references for the visualisation tests, written from the original MATLAB (spec §1.16),
and small models to draw."""
import math

import numpy as np

from conftest import keys_cubic
from dpm.features.flip import flip_features
from dpm.model import Component, Model
from dpm.vis import hog_glyphs

# --------------------------------------------------------------------------------------------
# Plain references, written from the original MATLAB
# --------------------------------------------------------------------------------------------


def ref_fold_hog(w):
    h, wd, _ = w.shape
    out = np.zeros((h, wd, 9))
    for y in range(h):
        for x in range(wd):
            for k in range(9):
                out[y, x, k] = max(w[y, x, k], 0) + max(w[y, x, k + 9], 0) + max(w[y, x, 18 + k], 0)
    return out


def ref_glyph_imrotate(bs, k):
    """imrotate(bar, -20*k, 'nearest', 'crop') by inverse mapping, pixel by pixel."""
    bar = np.zeros((bs, bs))
    c0 = int(math.floor(bs / 2 + 0.5)) - 1            # MATLAB round(bs/2), to 0-based
    bar[:, c0:c0 + 2] = 1
    out = np.zeros((bs, bs))
    c = (bs - 1) / 2
    t = math.radians(20 * k)                          # clockwise on screen (y down)
    for r in range(bs):
        for q in range(bs):
            dx, dy = q - c, r - c
            # rotate the output point back (counter-clockwise on screen) into the input
            sx = c + dx * math.cos(t) + dy * math.sin(t)
            sy = c - dx * math.sin(t) + dy * math.cos(t)
            ix, iy = int(math.floor(sx + 0.5)), int(math.floor(sy + 0.5))
            if 0 <= ix < bs and 0 <= iy < bs:
                out[r, q] = bar[iy, ix]
    return out


def ref_hog_picture(w9, bs):
    """HOGpicture.m's loop."""
    glyphs = hog_glyphs(bs)
    h, wd, _ = w9.shape
    im = np.zeros((h * bs, wd * bs))
    for i in range(h):
        for j in range(wd):
            for k in range(9):
                im[i * bs:(i + 1) * bs, j * bs:(j + 1) * bs] += glyphs[k] * max(w9[i, j, k], 0)
    return im


def ref_imresize_bicubic(im, scale):
    """imresize.m's contributions() for enlargement, one output sample at a time."""
    cubic = keys_cubic
    def resize_axis(v):
        n = len(v)
        out = []
        for u in range(1, math.ceil(n * scale) + 1):
            x = u / scale + 0.5 * (1 - 1 / scale)
            left = math.floor(x - 2)
            idx = [left + t for t in range(6)]
            wts = [cubic(x - i) for i in idx]
            aux = list(range(1, n + 1)) + list(range(n, 0, -1))
            src = [aux[(i - 1) % len(aux)] for i in idx]
            out.append(sum(wt * v[s - 1] for wt, s in zip(wts, src)) / sum(wts))
        return np.array(out)

    tmp = np.array([resize_axis(row) for row in im])
    return np.array([resize_axis(col) for col in tmp.T]).T


def principal_angle(img):
    """Angle (degrees in [0, 180)) of the principal axis of lit pixels, clockwise from vertical."""
    ys, xs = np.nonzero(img > 0)
    xs = xs - xs.mean()
    ys = ys - ys.mean()
    cov = np.cov(np.vstack([xs, ys]))
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, np.argmax(vals)]
    # direction (sin a, -cos a) is "clockwise by a from up"
    return math.degrees(math.atan2(vx, -vy)) % 180.0


def symmetric(rng, h, w):
    f = rng.standard_normal((h, w, 31))
    return f + flip_features(f)


def tiny_model(root, parts=()):
    return Model(components=[Component(root=root, bias=0.0, parts=list(parts))], blocks=[])
