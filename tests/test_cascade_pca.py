"""PCA of HOG (§C.1): the projection, the eigen-decomposition and the shipped coefficients."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, shared_path
from dpm.cascade import project
from dpm.cascade.pca import hog_second_moment, load_hog_pca, pca_of_hog
from dpm.features import hog, resize


def _orthonormal(rng, d=31):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


def test_projection_is_the_plain_matrix_product(rng):
    f = rng.standard_normal((7, 5, 31))
    c = rng.standard_normal((31, 5))
    expect = np.zeros((7, 5, 5))
    for y in range(7):
        for x in range(5):
            for k in range(5):
                expect[y, x, k] = sum(f[y, x, d] * c[d, k] for d in range(31))
    got = project(f, c)
    assert got.shape == (7, 5, 5) and got.flags.c_contiguous
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-12)
    # scores: <F C, W C> = <F, W C C^T>, and = <F, W> with every direction kept
    w = rng.standard_normal((7, 5, 31))
    np.testing.assert_allclose(np.sum(project(f, c) * project(w, c)), np.sum(f * (w @ c @ c.T)), rtol=1e-10)
    q = _orthonormal(rng)
    np.testing.assert_allclose(np.sum(project(f, q) * project(w, q)), np.sum(f * w), rtol=1e-10)


def test_pca_recovers_a_known_covariance(rng):
    q = _orthonormal(rng)
    values = np.sort(rng.uniform(0.01, 2.0, 31))[::-1]
    # 31 cells whose second moment is exactly Q diag(values) Q^T
    cells = np.sqrt(31 * values)[:, None] * q.T
    coeff, got = pca_of_hog(cells.T @ cells, 31)
    np.testing.assert_allclose(got, values, rtol=1e-10)
    for k in range(31):  # the same directions, up to sign
        assert abs(abs(coeff[:, k] @ q[:, k]) - 1) < 1e-8
    np.testing.assert_allclose(coeff.T @ coeff, np.eye(31), atol=1e-12)
    # pcacov's sign: the largest-magnitude entry of each column is positive
    assert (coeff[np.argmax(np.abs(coeff), axis=0), np.arange(31)] > 0).all()


def test_pca_orders_by_decreasing_eigenvalue():
    coeff, values = pca_of_hog(np.diag([1.0, 3.0, 2.0]))
    assert values.tolist() == [3.0, 2.0, 1.0]
    assert coeff.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]


def test_second_moment_sums_every_cell_at_every_scale(rng):
    image = rng.integers(0, 256, size=(90, 70, 3)).astype(np.uint8)
    moment, count = hog_second_moment([image, image[:60]], scales=(0.5, 1.0), sbin=4)
    expect, n = np.zeros((31, 31)), 0
    for im in (image, image[:60]):
        for s in (0.5, 1.0):
            f = hog(resize(im, s), 4)
            for y in range(f.shape[0]):
                for x in range(f.shape[1]):
                    expect += np.outer(f[y, x], f[y, x])
                    n += 1
    assert count == n
    np.testing.assert_allclose(moment, expect, rtol=1e-12, atol=1e-14)


def test_bad_arguments():
    with pytest.raises(ValueError, match="scales"):
        hog_second_moment([], scales=(0.5, 2.0))
    with pytest.raises(ValueError, match="count"):
        pca_of_hog(np.eye(31), 0)
    with pytest.raises(ValueError, match="square"):
        pca_of_hog(np.ones((31, 5)))


def test_shipped_coefficients():
    coeff, values = load_hog_pca()
    assert coeff.shape == (31, 31) and values.shape == (31,)
    np.testing.assert_allclose(coeff.T @ coeff, np.eye(31), atol=1e-10)
    assert (np.diff(values) <= 0).all() and values[-1] > 0
    assert (coeff[np.argmax(np.abs(coeff), axis=0), np.arange(31)] > 0).all()


@pytest.mark.slow
def test_shipped_coefficients_are_what_person_voc_gives():
    data = shared_path("data", "person-voc")
    r = subprocess.run([sys.executable, str(REPO / "tools" / "make_hog_pca.py"), str(data), "--check"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
