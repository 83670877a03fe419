"""The whole training schedule on a tiny synthetic VOC folder: determinism, resume, bad input."""
import dataclasses
import hashlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_voc
from dpm.model import load_model
from dpm.training import TrainConfig
from dpm.training import bbox, mining, stages
from dpm.training.data import TrainingData, clip_to_images
from dpm.training.schedule import train
from voc import training_data

REPO = Path(__file__).resolve().parents[1]

# Small caps keep the example sets (and the run) tiny; 2,000 updates per learner call.
CONFIG = TrainConfig(stage1_cache_bytes=2 ** 21, parts_cache_bytes=2 ** 22, num_hard_negatives=3)
UPDATES = 2000


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _train(voc, out, cls="person", **kw):
    kw.setdefault("config", CONFIG)
    kw.setdefault("max_updates", UPDATES)
    kw.setdefault("progress", False)
    return train(training_data(voc, cls), cls, out=out, **kw)


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("voc") / "VOC")


@pytest.fixture(scope="module")
def reference(voc, tmp_path_factory):
    """One uninterrupted run: (model path, summary)."""
    out = tmp_path_factory.mktemp("ref") / "person.npz"
    model, summary = _train(voc, out)
    return out, summary


def test_full_schedule_gives_a_part_model(reference):
    out, summary = reference
    model = load_model(out)
    assert model.class_name == "person"
    assert len(model.components) == 1
    assert len(model.components[0].parts) == CONFIG.num_parts
    assert np.isfinite(model.thresh)
    assert [r["name"] for r in summary.stages] == ["random1", "hard", "parts", "parts2", "mine", "bbox", "cascade"]
    assert all(not r.get("resumed") for r in summary.stages)
    assert "random1" in summary.format() and "objective" in summary.format()


def test_same_seed_identical_model_other_seed_differs(voc, reference, tmp_path):
    out, _ = reference
    again = tmp_path / "again.npz"
    _train(voc, again)
    assert _sha(again) == _sha(out)
    other = tmp_path / "other.npz"
    _train(voc, other, seed=1)
    assert _sha(other) != _sha(out)


def test_n_jobs_does_not_change_the_model(voc, reference, tmp_path):
    out, _ = reference
    par = tmp_path / "par.npz"
    _train(voc, par, n_jobs=2)
    assert _sha(par) == _sha(out)


def test_mining_in_small_bursts_gives_the_identical_model(voc, reference, tmp_path, monkeypatch):
    """Rich images come back from the workers in pieces; the examples and the model do not change."""
    out, _ = reference
    calls = []
    real = mining.ExampleMiner._mine_rest

    def counting(self, *a, **k):
        calls.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(mining, "MINING_BURST", 2)
    monkeypatch.setattr(mining.ExampleMiner, "_mine_rest", counting)
    small = tmp_path / "small.npz"
    _train(voc, small)
    assert calls  # the driver did read the rest of some images
    assert _sha(small) == _sha(out)


def test_rerun_resumes_every_stage(voc, reference, tmp_path, monkeypatch):
    out, _ = reference
    mine = tmp_path / "m.npz"
    _train(voc, mine)
    calls = []
    monkeypatch.setattr(stages.Trainer, "learn", lambda *a, **k: calls.append(1))
    model, summary = _train(voc, mine)
    assert calls == []  # nothing recomputed
    assert all(r.get("resumed") for r in summary.stages)
    assert _sha(mine) == _sha(out)


@pytest.mark.parametrize("crash_at", [3, 9, 14])
def test_crash_mid_stage_resumes_to_the_identical_model(voc, reference, tmp_path, monkeypatch, crash_at):
    """A failure in the n-th learner call; the rerun skips finished stages and iterations."""
    out, _ = reference
    mine = tmp_path / "m.npz"
    real_learn = stages.Trainer.learn
    calls, crashed = [], []

    def failing(self, model, examples, C, J, seed_path, desc):
        calls.append(desc)
        if len(calls) == crash_at and not crashed:
            crashed.append(desc)
            raise RuntimeError("simulated crash")
        return real_learn(self, model, examples, C, J, seed_path, desc)

    monkeypatch.setattr(stages.Trainer, "learn", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(voc, mine)
    assert not mine.exists()  # never a half-written model
    first = list(calls)
    calls.clear()
    _train(voc, mine)
    assert _sha(mine) == _sha(out)
    # calls of the finished stages/iterations are not repeated
    total = 1 + 4 + 4 + 12 + 3
    assert len(first) + len(calls) < total + crash_at
    assert calls[0] != first[0]


def test_sigkill_mid_stage_then_rerun_gives_the_identical_model(voc, reference, tmp_path):
    out, _ = reference
    mine = tmp_path / "k.npz"
    script = textwrap.dedent(f"""
        import logging, sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(message)s")
        from tests.test_training_pipeline import CONFIG, UPDATES
        from dpm.training.schedule import train
        from voc import training_data
        train(training_data({str(voc)!r}, "person"), "person", out={str(mine)!r}, config=CONFIG,
              max_updates=UPDATES, progress=False)
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(REPO))
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "checkpoint 'parts2-iter' saved" in line:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-5:])
    assert not mine.exists()
    model, summary = _train(voc, mine)
    resumed = [r["name"] for r in summary.stages if r.get("resumed")]
    assert resumed == ["random", "hard", "parts"]
    assert _sha(mine) == _sha(out)


def test_other_options_do_not_reuse_checkpoints(voc, tmp_path, caplog):
    out = tmp_path / "m.npz"
    _train(voc, out)
    with caplog.at_level(logging.INFO, logger="dpm"):
        _, summary = _train(voc, out, seed=5)
    assert not any(r.get("resumed") for r in summary.stages)


def test_two_components(voc, tmp_path):
    out = tmp_path / "two.npz"
    model, summary = _train(voc, out, components=2)
    assert len(load_model(out).components) == 2
    assert [r["name"] for r in summary.stages][:2] == ["random1", "random2"]


# -- bad input -------------------------------------------------------------------------------

def test_images_that_fail_to_load_are_skipped_and_counted(tmp_path, caplog):
    voc = make_voc(tmp_path / "VOC", n_pos=5, n_neg=5)
    (voc / "JPEGImages" / "neg01.jpg").write_bytes(b"not a jpeg")
    data = (voc / "JPEGImages" / "pos03.jpg").read_bytes()
    (voc / "JPEGImages" / "pos03.jpg").write_bytes(data[:200])  # truncated
    with caplog.at_level(logging.WARNING, logger="dpm"):
        model, _ = _train(voc, tmp_path / "m.npz")
    text = caplog.text
    assert "neg01.jpg" in text and "pos03.jpg" in text
    assert "2 image(s) failed and were skipped" in text
    assert len(model.components[0].parts) == CONFIG.num_parts


def test_five_hostile_images_are_skipped_and_counted(tmp_path, caplog, rng):
    """Empty, truncated, text and decompression-bomb files among positives and negatives."""
    from conftest import write_hostile_image

    voc = make_voc(tmp_path / "VOC", n_pos=6, n_neg=7)
    images = voc / "JPEGImages"
    hostile = {"pos01.jpg": "zero", "pos04.jpg": "text", "neg00.jpg": "bomb", "neg03.jpg": "truncated",
               "neg05.jpg": "zero"}
    for name, kind in hostile.items():
        write_hostile_image(images / name, kind, rng)
    with caplog.at_level(logging.WARNING, logger="dpm"):
        model, _ = _train(voc, tmp_path / "m.npz")
    text = caplog.text
    assert all(name in text for name in hostile)
    assert "5 image(s) failed and were skipped" in text
    assert (tmp_path / "m.npz").exists() and len(model.components[0].parts) == CONFIG.num_parts

def test_boxes_outside_the_image_are_clipped_with_a_warning(tmp_path, caplog):
    voc = make_voc(tmp_path / "VOC", extra_positive_boxes=[(60, 100, 180, 260), (500, 500, 600, 700)])
    pos = training_data(voc, "person").positives
    with caplog.at_level(logging.WARNING, logger="dpm"):
        kept = clip_to_images(pos)
    assert len(kept) == len(pos) - 1
    clipped = [p for p in kept if p.image_id == "pos00"][1]
    assert tuple(clipped.box) == (60, 100, 120, 200)
    assert "1 box(es) reach outside their image" in caplog.text
    assert "1 box(es) lie entirely outside" in caplog.text


def test_no_positives_and_no_negatives(tmp_path):
    voc = make_voc(tmp_path / "VOC")
    with pytest.raises(ValueError, match=r"no positives of class 'cat'.*classes there: person"):
        _train(voc, tmp_path / "m.npz", cls="cat")
    main = voc / "ImageSets" / "Main"
    main.joinpath("train.txt").write_text("pos00\npos01\n")
    with pytest.raises(ValueError, match="no negative images"):
        _train(voc, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_missing_or_empty_split(tmp_path):
    voc = make_voc(tmp_path / "VOC")
    (voc / "ImageSets" / "Main" / "trainval.txt").unlink()
    with pytest.raises(ValueError, match="trainval.txt: no such split file"):
        _train(voc, tmp_path / "m.npz")
    (voc / "ImageSets" / "Main" / "trainval.txt").write_text("\n")
    with pytest.raises(ValueError, match="no positives"):
        _train(voc, tmp_path / "m.npz")


def test_unwritable_cache_dir(voc, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError) as e:
        _train(voc, tmp_path / "m.npz", cache_dir=blocker / "cache")
    assert "cannot write checkpoints" in str(e.value) and "cache_dir" in str(e.value)
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("argv, message", [
    (["person", "--voc", "{missing}"], "no such dataset folder"),
    (["person", "--voc", "{voc}", "--components", "0"], "--components must be at least 1"),
    (["person", "--voc", "{voc}", "--box-scale", "0", "1"], "--box-scale factors must be in (0, 4]"),
    (["cat", "--voc", "{voc}"], "no positives of class 'cat'"),
    (["person", "--voc", "{voc}", "--out", "{missing}/m.npz"], "output folder does not exist"),
    (["person", "--voc", "{voc}", "--cache-dir", "{file}/c", "--out", "{tmp}/m.npz"], "cannot write checkpoints"),
])
def test_command_bad_input_one_line_error(voc, tmp_path, argv, message):
    (tmp_path / "file").write_text("x")
    fmt = dict(voc=voc, missing=tmp_path / "missing", file=tmp_path / "file", tmp=tmp_path)
    argv = [a.format(**fmt) for a in argv]
    r = subprocess.run([sys.executable, str(REPO / "bin" / "dpm-train"), *argv, "-q"], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert message in lines[0] and "Traceback" not in r.stderr


def test_scale_boxes_keeps_centres():
    from dpm.training import scale_boxes
    b = scale_boxes([[17, 17, 80, 144]], 0.5, 0.75)
    np.testing.assert_allclose(b, [[33.0, 33.0, 64.0, 128.0]])
    np.testing.assert_allclose(scale_boxes([[1, 2, 3, 4]]), [[1, 2, 3, 4]])


def test_box_scale_shrinks_the_regression_targets(voc, tmp_path, monkeypatch):
    seen = {}
    real = stages.fit_model_regressors

    def capture(model, comps, A, targets, **kw):
        seen.setdefault("targets", []).append(np.array(targets))
        return real(model, comps, A, targets, **kw)

    monkeypatch.setattr(stages, "fit_model_regressors", capture)
    _train(voc, tmp_path / "a.npz")
    cfg = dataclasses.replace(CONFIG, box_scale=(0.5, 0.75))
    model, _ = _train(voc, tmp_path / "s.npz", config=cfg)
    assert model.info["box_scale"] == "0.5 0.75"
    full, scaled = seen["targets"]
    np.testing.assert_allclose(scaled, bbox.scale_boxes(full, 0.5, 0.75))
    np.testing.assert_allclose(scaled[:, 2] - scaled[:, 0] + 1, 0.5 * (full[:, 2] - full[:, 0] + 1))


def test_two_runs_on_one_checkpoint_folder_second_fails_naming_the_first(voc, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from dpm.training.checkpoint import checkpoint_lock
        with checkpoint_lock({str(tmp_path / 'cache')!r}):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run([sys.executable, "-c", "import sys; from dpm.cli.train import main; sys.exit(main())",
                            "person", "--voc", str(voc), "--cache-dir", str(tmp_path / "cache"),
                            "--out", str(tmp_path / "m.npz"), "-q"],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and f"in use by process {holder.pid}" in r.stderr
    assert not (tmp_path / "m.npz").exists()


def test_remove_checkpoints_after_a_successful_run(voc, reference, tmp_path):
    out = tmp_path / "m.npz"
    _train(voc, out, cache_dir=tmp_path / "cache", keep_checkpoints=False)
    assert _sha(out) == _sha(reference[0])
    assert not (tmp_path / "cache").exists()


def test_damaged_checkpoint_archive_is_ignored_and_the_run_gives_the_same_model(voc, reference, tmp_path, caplog):
    out, cache = tmp_path / "m.npz", tmp_path / "cache"
    _train(voc, out, cache_dir=cache)
    for f in sorted(cache.glob("data-*-arrays.npz"))[:2] + sorted(cache.glob("data-*-model-*.npz"))[:1]:
        data = bytearray(f.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64  # a damaged zip member
        f.write_bytes(bytes(data))
    out.unlink()
    with caplog.at_level(logging.WARNING, logger="dpm"):
        _train(voc, out, cache_dir=cache)
    assert "is damaged" in caplog.text
    assert _sha(out) == _sha(reference[0])


def test_training_from_a_hand_made_list_with_no_dataset_folder(voc, reference, tmp_path):
    """The same positives and negatives given by hand give the same model as the VOC folder."""
    from PIL import Image as PILImage
    pos, neg = [], []
    for i in range(5):
        path = voc / "JPEGImages" / f"pos{i:02d}.jpg"
        w, h = PILImage.open(path).size
        pos.append((path, (21 + i % 3, 21, 100 + i % 3, 180), (w, h)))
    neg = [voc / "JPEGImages" / f"neg{j:02d}.jpg" for j in range(4)]
    data = TrainingData(positives=pos, negatives=neg)
    out = tmp_path / "hand.npz"
    train(data, "person", out=out, config=CONFIG, max_updates=UPDATES, progress=False)
    assert _sha(out) == _sha(reference[0])


@pytest.mark.parametrize("data, message", [
    (TrainingData(positives=[], negatives=["n.jpg"]), "no positives"),
    (TrainingData(positives=[("a.jpg", (1, 1, 10, 10))], negatives=[]), "no negative images"),
    (TrainingData(positives=[("a.jpg", (10, 1, 5, 10))], negatives=["n.jpg"]), "inverted"),
    ("VOC2007", "must be a dpm.training.TrainingData"),
])
def test_bad_training_data(data, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        train(data, "person", out=tmp_path / "m.npz", config=CONFIG, max_updates=UPDATES, progress=False)
    assert not (tmp_path / "m.npz").exists()
