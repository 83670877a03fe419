"""dpm-show: saved figures, the headless default, and one-line errors on bad input."""
import os
import subprocess
import sys

import numpy as np
import pytest

import dpm.vis
from dpm.cli import show
from conftest import REPO

PERSON = ("models", "voc-release3.1", "VOC2007", "person_final.mat")


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    # Never open a window from the tests, whatever the platform.
    monkeypatch.setattr(dpm.vis, "display_available", lambda: False)


def test_display_detection(monkeypatch):
    from dpm.vis import figures

    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setattr(figures.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not figures.display_available()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert figures.display_available()
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert not figures.display_available()
    monkeypatch.delenv("MPLBACKEND")
    monkeypatch.delenv("WAYLAND_DISPLAY")
    monkeypatch.setattr(figures.sys, "platform", "win32")
    assert figures.display_available()


@pytest.fixture
def person(models_dir):
    return models_dir / "VOC2007" / "person_final.mat"


def png_size(path):
    from PIL import Image
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def one_error_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dpm-show: error: "), err
    for n in needles:
        assert n in lines[0], err
    return lines[0]


def test_saves_model_figure(person, tmp_path, capsys):
    out = tmp_path / "p.png"
    assert show.main([str(person), "--out", str(out), "--dpi", "50"]) == 0
    w, h = png_size(out)
    assert 300 < w < 800 and 300 < h < 800
    assert "wrote" in capsys.readouterr().err


def test_headless_default_output_is_model_stem(person, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert show.main([str(person), "-q", "--dpi", "40"]) == 0
    assert (tmp_path / "person_final.png").is_file()


def test_components_subset_is_one_row(person, tmp_path):
    full, one = tmp_path / "full.png", tmp_path / "one.png"
    assert show.main([str(person), "--out", str(full), "-q", "--dpi", "50"]) == 0
    assert show.main([str(person), "--out", str(one), "--components", "2", "--negative", "-q", "--dpi", "50"]) == 0
    (wf, hf), (wo, ho) = png_size(full), png_size(one)
    assert ho < 0.7 * hf


def test_npz_model_and_pdf_output(person, tmp_path):
    from dpm.model import load_model, save_model

    npz = save_model(load_model(person), tmp_path / "person.npz")
    out = tmp_path / "person.pdf"
    assert show.main([str(npz), "--out", str(out), "-q"]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"


def test_display_without_interactive_backend_falls_back_to_saving(person, tmp_path, monkeypatch, capsys):
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        pytest.skip("needs the non-interactive Agg backend")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dpm.vis, "display_available", lambda: True)
    assert show.main([str(person), "--dpi", "40"]) == 0
    assert (tmp_path / "person_final.png").is_file()
    assert "no interactive matplotlib backend" in capsys.readouterr().err


@pytest.mark.parametrize("components,bad", [(["3"], "3"), (["0"], "0"), (["1", "5"], "5"), (["-1"], "-1")])
def test_components_out_of_range(person, tmp_path, capsys, components, bad):
    out = tmp_path / "x.png"
    assert show.main([str(person), "--out", str(out), "--components", *components]) == 1
    one_error_line(capsys, f"--components {bad}", "2 components")
    assert not out.exists()


def test_not_a_model(tmp_path, capsys, models_dir):
    import scipy.io

    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    mat = tmp_path / "other.mat"
    scipy.io.savemat(mat, {"x": np.arange(3)})
    npz = tmp_path / "arrays.npz"
    np.savez(npz, a=np.zeros(3))
    for path, needle in [(text, "not a model"), (mat, "no variable named 'model'"), (npz, "not a dpm model"),
                         (models_dir / "000061.jpg", "not a model"), (tmp_path / "missing.mat", "missing.mat")]:
        out = tmp_path / "x.png"
        assert show.main([str(path), "--out", str(out)]) == 1
        one_error_line(capsys, str(path), needle)
        assert not out.exists()


def test_unwritable_output(person, tmp_path, capsys):
    assert show.main([str(person), "--out", str(tmp_path / "no" / "such" / "dir.png")]) == 1
    one_error_line(capsys, "does not exist")
    assert show.main([str(person), "--out", str(tmp_path)]) == 1
    one_error_line(capsys, "is a directory")
    assert show.main([str(person), "--out", str(tmp_path / "x.unknownformat")]) == 1
    one_error_line(capsys, "suffix")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert show.main([str(person), "--out", str(ro / "x.png")]) == 1
            one_error_line(capsys, "not writable")
        finally:
            ro.chmod(0o700)


def test_usage_errors_exit_2(person, capsys):
    for argv in ([], [str(person), "--features", "x.jpg"], ["--features", "x.jpg", "--components", "1"]):
        with pytest.raises(SystemExit) as exc:
            show.main(argv)
        assert exc.value.code == 2
    capsys.readouterr()


def _need_hog():
    try:
        from dpm.features import hog
        hog(np.zeros((32, 32, 3)), 8)
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"dpm.features.hog is not available ({exc})")


def test_features_figure(tmp_path, monkeypatch):
    _need_hog()
    from PIL import Image

    img = np.zeros((64, 96, 3), np.uint8)
    img[:, 48:] = 200
    src = tmp_path / "edge.png"
    Image.fromarray(img).save(src)
    monkeypatch.chdir(tmp_path)
    assert show.main(["--features", str(src), "-q", "--dpi", "50"]) == 0
    w, h = png_size(tmp_path / "edge_hog.png")
    assert h > w          # landscape image: image and features stacked


def test_features_bad_image(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert show.main(["--features", str(bad), "--out", str(tmp_path / "o.png")]) == 1
    one_error_line(capsys, "bad.jpg")


def test_bin_script_runs_headless(person, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "p.png"
    r = subprocess.run([sys.executable, str(REPO / "bin" / "dpm-show"), str(person), "--out", str(out),
                        "--dpi", "40"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert png_size(out)[0] > 100
    r = subprocess.run([sys.executable, str(REPO / "bin" / "dpm-show"), str(person), "--components", "7"],
                       env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "out of range" in r.stderr
    assert list(tmp_path.glob("person_final*")) == []


def test_display_opens_a_pyplot_window_and_writes_nothing(person, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dpm.vis, "display_available", lambda: True)
    monkeypatch.setattr(show, "_non_interactive_backends", lambda: set())
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(plt.gcf()))
    try:
        assert show.main([str(person), "--components", "1", "-q"]) == 0
        assert len(shown) == 1
        fig = shown[0]
        assert len(fig.axes) == 3 and [ax.get_title() for ax in fig.axes] == ["root", "parts", "deformation"]
        assert list(tmp_path.iterdir()) == []
    finally:
        plt.close("all")


@pytest.mark.parametrize("name, stem", [("voc2007/car", "voc2007_car"), ("r5/inria/person", "r5_inria_person")])
def test_builtin_model_names(name, stem, tmp_path, monkeypatch, capsys):
    # the names dpm-detect takes (release 3.1 and release 5), saved under the name with "/" as "_"
    monkeypatch.chdir(tmp_path)
    assert show.main([name, "--dpi", "30", "-q"]) == 0
    w, h = png_size(tmp_path / f"{stem}.png")
    assert w > 100 and h > 100
    assert show.main(["no/such/model"]) == 1
    one_error_line(capsys, "no/such/model", "not a built-in model", "--list-models")
