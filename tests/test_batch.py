"""detect_files: results in input order whatever the number of processes."""
import shutil

import numpy as np
import pytest

from dpm.detection.batch import detect_files
from dpm.execution import TaskFailed
from dpm.model import load_model


@pytest.fixture(scope="module")
def inria(models_dir):
    return load_model(models_dir / "INRIA" / "inria_final.mat")


def test_shared_work_keeps_input_order_and_errors(inria, models_dir, tmp_path):
    paths = []
    for i, name in enumerate(["000061.jpg", "000034.jpg", "000084.jpg", "000061.jpg", "000084.jpg"]):
        paths.append(tmp_path / f"{i}_{name}")
        shutil.copy(models_dir / name, paths[-1])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    paths.insert(2, broken)
    serial = list(detect_files(paths, inria, n_jobs=1, progress=False, threshold=-0.5))
    for jobs in (2, 3):
        shared = list(detect_files(paths, inria, n_jobs=jobs, progress=False, threshold=-0.5))
        assert [p for p, _ in shared] == [p for p, _ in serial] == paths
        for (_, a), (_, b) in zip(serial, shared):
            if isinstance(a, Exception):
                assert type(a) is type(b) and str(a) == str(b)
            else:
                np.testing.assert_array_equal(a.boxes, b.boxes)
                np.testing.assert_array_equal(a.scores, b.scores)
    assert isinstance(serial[2][1], TaskFailed) and serial[2][1].kind == "ValueError"
    assert "broken.jpg" in str(serial[2][1]) and "\n" not in str(serial[2][1])
