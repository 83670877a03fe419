"""The Dask backend on a LocalCluster of two single-threaded worker processes: same results as the
local backends (detection and training, byte for byte), worker deaths, and the user's errors."""
import contextlib
import hashlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from conftest import write_good_image  # noqa: E402
from dpm._alloc import tune_malloc  # noqa: E402
from dpm.detection.batch import detect_files  # noqa: E402
from dpm.cli import detect as detect_cli  # noqa: E402
from dpm.execution.dask import BATCH_BYTES, MAX_BATCH, _Pace  # noqa: E402
from dpm.execution import (DaskExecutor, FuturesExecutor, MissingDependency, TaskFailed,  # noqa: E402
                           connect, init_dask_worker, make_executor)
from dpm.model import load_model  # noqa: E402
from dpm.training.schedule import train  # noqa: E402
from tests.test_execution import Blob, Square, _check  # noqa: E402
from tests.test_training_pipeline import CONFIG, UPDATES, reference, voc  # noqa: E402,F401 (fixtures)
from voc import training_data  # noqa: E402


@contextlib.contextmanager
def _cluster(**config):
    # A LocalCluster closes for good a worker whose name is absent 15 s after it died (a setting for
    # batch-system jobs, distributed.deploy.lost-worker-timeout): on a loaded machine a worker killed
    # again and again can still be restarting then, and the cluster would be left with no workers.
    config = {"distributed.deploy.lost-worker-timeout": "1h", **config}
    with dask.config.set(config), distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                            dashboard_address=":0", silence_logs=50) as c:
        yield c


@pytest.fixture(scope="module")
def cluster():
    with _cluster() as c:
        yield c


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_results_in_input_order_failures_as_values_two_models(client):
    ex = make_executor(executor=client)
    assert isinstance(ex, DaskExecutor)
    out = list(ex.map([Square(i) for i in range(30)], {"add": 1}))
    _check(out, 30)
    assert out[3][1].kind == "MemoryError" and out[5][1].kind == "ValueError"
    out = list(ex.map((Square(i) for i in range(12)), {"add": 7}))   # a second model: nothing reused
    _check(out, 12, add=7)
    # models and results are released with their map (asynchronously): nothing stays on the cluster
    deadline = time.monotonic() + 10
    while [k for k in client.who_has() if str(k).startswith("dpm-")] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [k for k in client.who_has() if str(k).startswith("dpm-")]


def test_workers_get_dpms_allocator_settings_over_dasks_default(client):
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536: not the user's tuning, so dpm's settings apply
    # (without them every detection faults its memory in again: docs/cluster.md)
    list(DaskExecutor(client).map([Square(i) for i in range(8)], {"add": 1}))
    env = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert set(env.values()) == {"65536"}
    linux = sys.platform.startswith("linux")
    assert linux in client.run(tune_malloc).values()   # in effect where the executor ran a task
    assert set(client.run(init_dask_worker).values()) == {linux}


def test_any_concurrent_futures_executor():
    with ThreadPoolExecutor(2) as pool:
        ex = make_executor(executor=pool)
        assert isinstance(ex, FuturesExecutor)
        _check(list(ex.map([Square(i) for i in range(20)], {"add": 1})), 20)


def test_stream_is_read_lazily_with_a_bounded_window(client):
    seen = []

    def tasks():
        for i in range(10 ** 6):
            seen.append(i)
            yield Square(i + 6)

    it = DaskExecutor(client, batch_seconds=0).map(tasks(), {"add": 0})
    first = [next(it) for _ in range(5)]
    it.close()
    assert [r for _, r in first] == [(i + 6) ** 2 for i in range(5)]
    assert len(seen) <= 5 + 4 * 2 * 2   # what was yielded, plus the window (4 x 2 tasks x 2 threads)
    seen.clear()
    it = DaskExecutor(client).map(tasks(), {"add": 0})   # in batches: the window counts batches
    first = [next(it) for _ in range(300)]
    it.close()
    assert [r for _, r in first] == [(i + 6) ** 2 for i in range(300)]
    assert len(seen) <= 300 + 4 * 2 * 2 * MAX_BATCH


def _dask_tasks(client, run, prefix="dpm-Square-"):
    with distributed.get_task_stream(client=client) as stream:
        out = run()
    return out, [t for t in stream.data if str(t["key"]).startswith(prefix)]


def test_short_tasks_travel_in_batches_with_their_own_results(client):
    ex = DaskExecutor(client)
    out, sent = _dask_tasks(client, lambda: list(ex.map([Square(i) for i in range(200)], {"add": 1})))
    _check(out, 200)   # each task its own result, its own failure, in input order
    assert 200 / MAX_BATCH <= len(sent) < 50   # 5 ms tasks: batches as large as allowed, after the first
    out, sent = _dask_tasks(client, lambda: list(DaskExecutor(client, batch_seconds=0).map(
        [Square(i) for i in range(40)], {"add": 1})))
    _check(out, 40)
    assert len(sent) == 40
    with pytest.raises(ValueError, match="batch_seconds"):
        DaskExecutor(client, batch_seconds=-1)


def test_large_results_travel_in_small_batches(client):
    # 4 MiB results: a batch is sized for about BATCH_BYTES (16 MiB) of them, whatever their speed
    out, sent = _dask_tasks(client, lambda: [(t.i, len(r), r[:1]) for t, r in DaskExecutor(client).map(
        [Blob(i) for i in range(24)], None)], prefix="dpm-Blob-")
    assert out == [(i, 4 << 20, bytes([i])) for i in range(24)]
    assert len(sent) >= 24 // (BATCH_BYTES // (4 << 20))


def test_batch_sizes_follow_the_seconds_and_bytes_reported():
    pace = _Pace(0.25)
    assert pace.size() == 1                      # nothing reported yet
    pace.add(0.5, 1000, 10)                      # 50 ms per task, 100 bytes each
    assert pace.size() == 5
    pace.add(0.0, 0, 990)                        # very fast tasks: at most MAX_BATCH
    assert pace.size() == MAX_BATCH
    big = _Pace(0.25)
    big.add(0.01, 3 * BATCH_BYTES, 10)           # fast, but each result 0.3 x BATCH_BYTES
    assert big.size() == 3
    huge = _Pace(0.25)
    huge.add(0.01, 20 * BATCH_BYTES, 2)          # each result larger than a batch: alone
    assert huge.size() == 1
    off = _Pace(0)
    off.add(0.001, 10, 100)
    assert off.size() == 1


def test_detection_identical_to_local_and_unreadable_paths_named(client, tmp_path, rng, small_model_file):
    paths = [write_good_image(tmp_path / f"{i:02d}.png", rng) for i in range(10)]
    paths.insert(4, tmp_path / "not-on-the-workers.png")
    model = load_model(small_model_file)
    local = list(detect_files(paths, model, n_jobs=1, progress=False, threshold=-10))
    remote = list(detect_files(paths, model, executor=client, progress=False, threshold=-10))
    assert [p for p, _ in remote] == [p for p, _ in local] == paths
    for (p, a), (_, b) in zip(local, remote):
        if p.name.startswith("not-"):
            assert isinstance(b, TaskFailed) and str(p) in str(b) and str(a) == str(b)
        else:
            assert len(a) > 0
            np.testing.assert_array_equal(a.boxes, b.boxes)
            np.testing.assert_array_equal(a.scores, b.scores)


@pytest.fixture(scope="module")
def reference_sha(reference):
    """The model of an uninterrupted in-process run (tests/test_training_pipeline.py's reference)."""
    return _sha(reference[0])


def test_training_on_the_cluster_gives_the_identical_model(voc, reference_sha, client, tmp_path):
    out = tmp_path / "person.npz"
    train(training_data(voc, "person"), "person", out=out, config=CONFIG, max_updates=UPDATES, progress=False,
          executor=client)
    assert _sha(out) == reference_sha


def _kill_a_worker_when(client, prefix, killed):
    """SIGKILL one worker process as soon as it runs a task whose key starts with ``prefix``."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not killed:
        for addr, keys in client.processing().items():
            if any(str(k).startswith(prefix) for k in keys) and addr in pids:
                os.kill(pids[addr], signal.SIGKILL)
                killed.append(addr)
                return
        time.sleep(0.02)


def test_a_worker_killed_during_mining_costs_nothing(voc, reference_sha, tmp_path):
    with _cluster() as cluster, distributed.Client(cluster, set_as_default=False) as client:
        killed = []
        killer = threading.Thread(target=_kill_a_worker_when, args=(client, "dpm-MineTask", killed))
        killer.start()
        out = tmp_path / "person.npz"
        train(training_data(voc, "person"), "person", out=out, config=CONFIG, max_updates=UPDATES,
              progress=False, executor=client)
        killer.join()
        assert killed, "no worker was killed"
        assert _sha(out) == reference_sha


# allowed-failures 3 (Dask's default) costs 8 worker restarts, 27 to 48 s on a loaded 2-core machine: -m slow
@pytest.mark.parametrize("allowed_failures", [0, pytest.param(3, marks=pytest.mark.slow)])
def test_a_task_that_always_kills_its_worker_fails_alone(allowed_failures, caplog):
    # Dask gives up on every task a dying worker held (running or queued there) once it has held it at
    # allowed_failures + 1 deaths: with 0, the killer's neighbours queued on its worker are given up at
    # its first kill, the harshest blame.  Only the killer may fail, whatever Dask blames.
    with _cluster(**{"distributed.scheduler.allowed-failures": allowed_failures}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        client.run(lambda: None)
        tasks = [Square(i, parent=os.getpid(), kill=(7,)) for i in range(16)]
        out = list(DaskExecutor(client).map(tasks, {"add": 1}))
    _check(out, 16, failed=(3, 5, 7))
    bad = out[7][1]
    assert bad.kind == "WorkerDied" and str(bad).startswith("item7: the worker process died")
    assert str(bad).endswith("also when it ran alone on the cluster")   # convicted alone, not by Dask's blame
    again = [r.getMessage() for r in caplog.records if "again alone" in r.getMessage()]
    assert again and all("worker died" in m for m in again)


def test_unreachable_scheduler_is_a_one_line_error_within_seconds(tmp_path, capsys, small_model_file, rng):
    img = write_good_image(tmp_path / "a.png", rng)
    t0 = time.monotonic()
    status = detect_cli.main([str(small_model_file), str(img), "--scheduler", "tcp://127.0.0.1:1", "-q"])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert status == 1 and elapsed < 10
    assert err.count("\n") == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err


def test_missing_scheduler_file_and_conflicting_flags(tmp_path, capsys, small_model_file, rng):
    img = write_good_image(tmp_path / "a.png", rng)
    assert detect_cli.main([str(small_model_file), str(img), "--scheduler-file", str(tmp_path / "s.json")]) == 1
    assert "s.json: no such scheduler file" in capsys.readouterr().err
    assert detect_cli.main([str(small_model_file), str(img), "--scheduler", "tcp://x:1", "-j", "2"]) == 1
    assert "--scheduler and -j exclude each other" in capsys.readouterr().err


def test_dask_not_installed_says_how_to_install_it(tmp_path, capsys, small_model_file, rng, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed now fails
    img = write_good_image(tmp_path / "a.png", rng)
    assert detect_cli.main([str(small_model_file), str(img), "--scheduler", "tcp://127.0.0.1:8786", "-q"]) == 1
    assert capsys.readouterr().err == ("dpm-detect: error: Dask is not installed: "
                                       "pip install 'dpm[distributed]'\n")
    with pytest.raises(MissingDependency):
        connect("tcp://127.0.0.1:8786")


def test_detect_command_on_the_cluster_writes_the_local_file(cluster, tmp_path, capsys, small_model_file, rng,
                                                             monkeypatch):
    names = [write_good_image(tmp_path / f"{i}.png", rng).name for i in range(6)]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{n}\n" for n in names[:3]) + "gone.png\n" + "".join(f"{n}\n" for n in names[3:]))
    monkeypatch.chdir(tmp_path)   # relative paths: the workers are sent absolute ones, the file keeps these
    common = [str(small_model_file), "--list", "list.txt", "--threshold", "-10", "-q"]
    assert detect_cli.main(common + ["-o", "local.csv"]) == 1
    assert detect_cli.main(common + ["-o", "dask.csv", "--scheduler", cluster.scheduler_address]) == 1
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    err = capsys.readouterr().err
    assert err.count("1 of 7 image(s) failed (6 written)") == 2 and "gone.png: no such file" in err


def test_several_classes_train_concurrently_on_the_cluster(voc, reference_sha, cluster, tmp_path, capsys,
                                                           monkeypatch):
    import shutil

    from dpm.cli import train as train_cli
    from dpm.training import schedule

    two = tmp_path / "VOC"
    shutil.copytree(voc, two)
    for xml in (two / "Annotations").glob("pos*.xml"):   # a second class on the same boxes
        text = xml.read_text()
        objects = text[text.index("<object>"):text.rindex("</object>") + len("</object>")]
        xml.write_text(text.replace(objects, objects + objects.replace("<name>person</name>", "<name>walker</name>")))
    monkeypatch.setattr(schedule, "TrainConfig", lambda **kw: CONFIG)   # the tiny configuration of the tests
    status = train_cli.main(["all", "--voc", str(two), "--out", str(tmp_path / "models"), "--updates", str(UPDATES),
                             "--scheduler", cluster.scheduler_address, "-q"])
    assert status == 0, capsys.readouterr().err
    assert _sha(tmp_path / "models" / "person.npz") == reference_sha   # the other class changed nothing
    assert load_model(tmp_path / "models" / "walker.npz").class_name == "walker"
    assert (tmp_path / "models" / "person.npz.cache").is_dir() and (tmp_path / "models" / "walker.npz.cache").is_dir()
