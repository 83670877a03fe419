"""The devkit's results-file format: writing, reading, errors with line numbers."""
import numpy as np
import pytest

import voc
from voc import Results, read_results, results_filename, write_results


def test_results_filename():
    assert results_filename("test", "person") == "comp3_det_test_person.txt"
    assert results_filename("val", "car", "comp4") == "comp4_det_val_car.txt"


def test_round_trip_is_exact(tmp_path, rng):
    n = 200
    ids = [f"img{k % 17:04d}" for k in range(n)]
    scores = rng.normal(size=n) * 3
    xy = rng.uniform(-5, 400, (n, 2))
    boxes = np.c_[xy, xy + rng.uniform(0, 200, (n, 2))]
    boxes[:10] = np.floor(boxes[:10])           # some integral coordinates
    scores[0] = 1e-300
    path = tmp_path / "r.txt"
    assert write_results(path, (ids, scores, boxes)) == n
    back = read_results(path)
    assert back.image_ids == ids
    np.testing.assert_array_equal(back.scores, scores)      # bit for bit
    np.testing.assert_array_equal(back.boxes, boxes)
    assert not (tmp_path / "r.txt.part").exists()


def test_written_format(tmp_path):
    path = tmp_path / "r.txt"
    write_results(path, {"000001": np.array([[1, 2, 30, 40.5, -0.25]]),
                         "000002": np.zeros((0, 5)),
                         "000003": np.array([[10, 20, 30, 40, 1.0], [1, 1, 2, 2, 0.1]])})
    assert path.read_text().splitlines() == [
        "000001 -0.25 1 2 30 40.5",
        "000003 1 10 20 30 40",
        "000003 0.1 1 1 2 2",
    ]


def test_write_accepts_objects_with_boxes_and_scores(tmp_path):
    class Dets:
        boxes = np.array([[1.5, 2, 3, 4]])
        scores = np.array([0.5])
    path = tmp_path / "r.txt"
    write_results(path, {"a": Dets()})
    assert path.read_text() == "a 0.5 1.5 2 3 4\n"


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        write_results(tmp_path / "r.txt", (["a b"], [1.0], [[1, 1, 2, 2]]))
    with pytest.raises(ValueError, match="finite"):
        write_results(tmp_path / "r.txt", (["a"], [np.inf], [[1, 1, 2, 2]]))
    with pytest.raises(ValueError, match="1 image ids, 2 scores"):
        write_results(tmp_path / "r.txt", (["a"], [1.0, 2.0], [[1, 1, 2, 2]]))


def test_read_exponent_notation_and_blank_lines(tmp_path):
    # pascal_eval.m's %d turns into exponent notation for non-integers
    path = tmp_path / "r.txt"
    path.write_text("\n000001 -1.234500e+00 1.000000e+00 2 3.5e1 4.000000e+01\n\n  \n")
    r = read_results(path)
    assert r.image_ids == ["000001"] and len(r) == 1
    np.testing.assert_array_equal(r.scores, [-1.2345])
    np.testing.assert_array_equal(r.boxes, [[1, 2, 35, 40]])


def test_by_image(tmp_path):
    r = Results(["b", "a", "b"], np.array([1.0, 2.0, 3.0]),
                np.array([[1, 1, 2, 2], [3, 3, 4, 4], [5, 5, 6, 6]], float))
    groups = r.by_image()
    assert list(groups) == ["b", "a"]
    np.testing.assert_array_equal(groups["b"], [[1, 1, 2, 2, 1], [5, 5, 6, 6, 3]])


@pytest.mark.parametrize("content, what", [
    ("a 1 1 1 2 2\nb 1 1 1 2\n", ":2: expected 6 fields 'image_id score x1 y1 x2 y2', got 5"),
    ("a 1 1 1 2 2\n\nb 1 1 x 2 2\n", ":3: 'x' is not a number"),
    ("a nan 1 1 2 2\n", ":1: score and coordinates must be finite"),
    ("a 1 5 1 2 2\n", ":1: box [5 1 2 2] has x2 < x1 or y2 < y1"),
    ("a 1 1 1 2 2\na 1 1 1 2 2\nzz 1 1 1 2 2\n", ":3: image id 'zz' is not in the image set"),
])
def test_read_errors_name_the_line(tmp_path, content, what):
    path = tmp_path / "r.txt"
    path.write_text(content)
    with pytest.raises(ValueError) as e:
        read_results(path, image_ids=["a", "b"])
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)) and what in msg


def test_read_missing_file(tmp_path):
    with pytest.raises(ValueError, match="results file not found"):
        read_results(tmp_path / "none.txt")


def test_results_feed_evaluate(tmp_path):
    gt = voc.GroundTruth.from_mapping({"a": np.array([[1, 1, 10, 10]], float), "b": np.zeros((0, 4))})
    path = tmp_path / "r.txt"
    write_results(path, (["b", "a"], [2.0, 1.0], [[1, 1, 10, 10], [1, 1, 10, 10]]))
    res = voc.evaluate(read_results(path, image_ids=gt.image_ids), gt)
    np.testing.assert_array_equal(res.tp, [False, True])
    np.testing.assert_allclose(res.precision, [0, 0.5])


def test_partial_files_are_refused_unless_asked(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("a 1 1 1 2 2\n# partial: 3 of 9 images done (1 written, 2 failed); the run "
                    "stopped early: interrupted\n")
    with pytest.raises(ValueError, match=r"r.txt:2: the file is marked partial \(# partial: 3 of 9"):
        read_results(path)
    assert read_results(path, allow_partial=True).image_ids == ["a"]


def test_lines_are_counted_at_newlines_only(tmp_path):
    # \x0c, \x1c, \x85 and \u2028 end a line for str.splitlines, not for an editor
    path = tmp_path / "r.txt"
    path.write_bytes("a 1 1 1 2\x0c2\nb 1 5 1 2 2\n".encode())
    with pytest.raises(ValueError, match=r"r.txt:2: box \[5 1 2 2\]"):
        read_results(path)
    path.write_bytes(b"a 1 1 1 2 2\nb 1 1 1 2 \xff\n")
    with pytest.raises(ValueError, match=r"r.txt:2: not UTF-8 text"):
        read_results(path)
    path.write_text("a 1 1 1 2 2\nb 1_0 1 1 2 2\n")
    with pytest.raises(ValueError, match=r"r.txt:2: '1_0' is not a number"):
        read_results(path)


_NUMBER_TEXT = __import__("re").compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", __import__("re").ASCII)


def _reference_read(data: bytes, allowed):
    """What a correct reader must return for ``data``, or None if it must refuse it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    rows = []
    for line in text.split("\n"):
        if line.startswith("# partial:"):
            return None
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6 or not all(_NUMBER_TEXT.fullmatch(v) for v in fields[1:]):
            return None
        vals = [float(v) for v in fields[1:]]
        if not np.isfinite(vals).all() or vals[3] < vals[1] or vals[4] < vals[2]:
            return None
        if fields[0] not in allowed:
            return None
        rows.append((fields[0], vals))
    return rows


def test_fuzzed_results_files_read_correctly_or_fail_in_one_line(tmp_path):
    rng = np.random.default_rng(2024)
    ids = [f"{k:06d}" for k in range(8)]
    base = "".join(f"{ids[k % 8]} {rng.normal():.6g} {k} {k + 1} {k + 20.5} {k + 30}\n"
                   for k in range(12)).encode()
    alphabet = list(b"0123456789 .-+eE\n\r\t\x0b\x0c#_xn") + [0x00, 0x85, 0xc3, 0xa9, 0xff, 0xe2]
    path = tmp_path / "comp3_det_test_person.txt"
    outcomes = {"read": 0, "refused": 0}
    for trial in range(1000):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 4))):
            op, at = int(rng.integers(0, 4)), int(rng.integers(0, len(data) + 1))
            if op == 0 and at < len(data):
                data[at] = alphabet[int(rng.integers(len(alphabet)))]           # replace a byte
            elif op == 1:
                data[at:at] = bytes([alphabet[int(rng.integers(len(alphabet)))]])  # insert
            elif op == 2:
                del data[at:at + int(rng.integers(1, 8))]                        # delete a run
            else:
                data[at:at] = "\u2028 1e999 nan ١ \x1c".encode()[int(rng.integers(0, 8)):][:6]
        path.write_bytes(bytes(data))
        expected = _reference_read(bytes(data), set(ids))
        try:
            got = read_results(path, image_ids=ids)
        except ValueError as exc:
            msg = str(exc)
            assert expected is None, (trial, bytes(data), msg)
            assert "\n" not in msg and "\r" not in msg and msg.startswith(f"{path}:"), (trial, msg)
            assert len(msg) < 400, msg
            outcomes["refused"] += 1
            continue
        assert expected is not None, (trial, bytes(data))
        assert got.image_ids == [r[0] for r in expected]
        np.testing.assert_array_equal(np.c_[got.scores, got.boxes].reshape(-1, 5),
                                      np.array([r[1] for r in expected]).reshape(-1, 5))
        outcomes["read"] += 1
    assert outcomes["read"] > 50 and outcomes["refused"] > 300, outcomes
