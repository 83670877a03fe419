"""Tests of dpm.training.checkpoint: keyed, atomic stage checkpoints."""
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO
from dpm.training import CheckpointStore, dataset_fingerprint, initmodel
from dpm.training import checkpoint as ckmod

KEY = {"dataset": {"path": "/data/voc", "sha256": "abc"}, "class": "person", "options": {"C": 0.002}, "seed": 1}


def model(h=7, w=3, value=0.0):
    m = initmodel(np.array([[1, 1, 8 * w, 8 * h]], float), size=(h, w))
    m.components[0].root[:] = value
    m.components[0].bias = value
    return m


def test_save_load_round_trip(tmp_path):
    store = CheckpointStore(tmp_path / "ck", KEY)
    assert store.status == "new" and store.latest() is None and store.load("random") is None
    arrays = {"scores": np.arange(5, dtype=np.float32), "ids": np.array([[1, 2], [3, 4]])}
    store.save("random", [model(value=1.5), model(5, 5, 2.0)], state={"iteration": 3, "rng": [1, 2]},
               arrays=arrays)
    again = CheckpointStore(tmp_path / "ck", dict(KEY))
    assert again.status == "resumed" and again.stages() == ["random"]
    ck = again.load("random")
    assert list(ck.models) == ["0", "1"] and ck.state == {"iteration": 3, "rng": [1, 2]}
    assert ck.model.components[0].bias == 1.5
    np.testing.assert_array_equal(ck.models["1"].components[0].root, np.full((5, 5, 31), 2.0))
    for k, v in arrays.items():
        np.testing.assert_array_equal(ck.arrays[k], v)
        assert ck.arrays[k].dtype == v.dtype


def test_latest_and_overwrite(tmp_path):
    store = CheckpointStore(tmp_path, KEY)
    store.save("random", model(value=1.0))
    store.save("hard", model(value=2.0), state={"n": 1})
    store.save("hard", model(value=3.0), state={"n": 2})
    assert store.stages() == ["random", "hard"]
    ck = store.latest()
    assert ck.stage == "hard" and ck.state == {"n": 2} and ck.model.components[0].bias == 3.0
    assert ck.sequence == 3
    # only the live data files remain
    data = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("data-"))
    assert len(data) == 2


def test_key_mismatch_starts_over_and_says_why(tmp_path, caplog):
    CheckpointStore(tmp_path, KEY).save("random", model())
    other = dict(KEY, seed=2)
    with caplog.at_level(logging.WARNING, logger="dpm.training.checkpoint"):
        store = CheckpointStore(tmp_path, other)
    assert store.status == "mismatch" and store.stages() == [] and store.load("random") is None
    assert "seed: 1 -> 2" in caplog.text and "starting over" in caplog.text
    # and the old key does not see the new key's checkpoints either
    store.save("random", model(value=4.0))
    assert CheckpointStore(tmp_path, KEY).load("random") is None


def test_foreign_manifest_is_ignored(tmp_path):
    a = CheckpointStore(tmp_path / "a", KEY)
    a.save("random", model())
    b = CheckpointStore(tmp_path / "b", dict(KEY, seed=5))
    for p in (tmp_path / "a").iterdir():   # copy a's stage files into b's directory
        if p.name != "key.json":
            (tmp_path / "b" / p.name).write_bytes(p.read_bytes())
    assert b.load("random") is None and b.latest() is None


def test_restart_and_clear(tmp_path):
    CheckpointStore(tmp_path, KEY).save("random", model())
    store = CheckpointStore(tmp_path, KEY, restart=True)
    assert store.status == "restarted" and store.stages() == []
    store.save("hard", model())
    store.clear()
    assert store.stages() == [] and (tmp_path / "key.json").exists()
    store.save("hard", model())
    assert store.has("hard")


def test_crash_before_commit_keeps_previous_checkpoint(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path, KEY)
    store.save("hard", model(value=1.0), state={"n": 1})

    def crash(src, dst):
        if str(dst).endswith("stage-hard.json"):
            raise KeyboardInterrupt("killed")
        os.replace(src, dst)

    monkeypatch.setattr(ckmod, "_replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save("hard", model(value=2.0), state={"n": 2})
    monkeypatch.setattr(ckmod, "_replace", os.replace)
    again = CheckpointStore(tmp_path, KEY)
    ck = again.load("hard")
    assert ck.state == {"n": 1} and ck.model.components[0].bias == 1.0
    # the new, uncommitted data files were cleaned up on open
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("data-")]) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_killed_process_between_write_and_rename(tmp_path):
    # A real process dies (os._exit, no cleanup) right before the manifest rename.
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        import numpy as np
        from dpm.training import CheckpointStore, initmodel
        from dpm.training import checkpoint as ckmod
        key = {KEY!r}
        store = CheckpointStore({str(tmp_path)!r}, key)
        m = initmodel(np.array([[1, 1, 24, 56]], float), size=(7, 3))
        m.components[0].bias = 1.0
        store.save("parts", m, state={{"n": 1}})
        def die(src, dst):
            if str(dst).endswith("stage-parts.json"):
                os._exit(9)
            os.replace(src, dst)
        ckmod._replace = die
        m.components[0].bias = 2.0
        store.save("parts", m, state={{"n": 2}}, arrays={{"x": np.zeros(10)}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("data-")]
    assert len(leftovers) == 3          # old model + new model + new arrays
    store = CheckpointStore(tmp_path, KEY)
    ck = store.load("parts")
    assert ck.state == {"n": 1} and ck.model.components[0].bias == 1.0 and ck.arrays == {}
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("data-")]) == 1


def test_damaged_data_file_is_treated_as_absent(tmp_path, caplog):
    store = CheckpointStore(tmp_path, KEY)
    store.save("random", model())
    manifest = json.loads((tmp_path / "stage-random.json").read_text())
    (tmp_path / manifest["models"]["0"]).write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        assert store.load("random") is None
    assert "damaged" in caplog.text


def test_unwritable_or_invalid_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        CheckpointStore(f, KEY)
    if os.name == "posix" and os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(OSError, match="cannot write checkpoints"):
                CheckpointStore(ro / "ck", KEY)
        finally:
            ro.chmod(0o700)
    with pytest.raises(OSError, match="cannot write checkpoints"):
        CheckpointStore(f / "sub", KEY)       # a path below a regular file


def test_bad_names_state_and_arrays(tmp_path):
    store = CheckpointStore(tmp_path, KEY)
    with pytest.raises(ValueError, match="invalid stage name"):
        store.save("../evil", model())
    with pytest.raises(ValueError, match="JSON"):
        store.save("a", model(), state={"x": object()})
    with pytest.raises(ValueError, match="object dtype"):
        store.save("a", model(), arrays={"x": np.array([object()])})
    with pytest.raises(ValueError, match="not a dpm Model"):
        store.save("a", ["not a model"])
    with pytest.raises(ValueError, match="JSON"):
        CheckpointStore(tmp_path / "k", {"x": object()})
    assert store.stages() == []


def test_dataset_fingerprint_changes_with_annotations(tmp_path):
    root = tmp_path / "voc"
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    (root / "Annotations" / "a.xml").write_text("<annotation/>")
    fp1 = dataset_fingerprint(root)
    assert fp1["files"] == 2 and fp1 == dataset_fingerprint(root)
    (root / "Annotations" / "a.xml").write_text("<annotation><object/></annotation>")
    assert dataset_fingerprint(root)["sha256"] != fp1["sha256"]
    with pytest.raises(FileNotFoundError):
        dataset_fingerprint(tmp_path / "missing")
