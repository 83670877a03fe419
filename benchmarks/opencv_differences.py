"""A release-3.1 model exported without pruning, detected by OpenCV's C++ detector and by dpm, image by image.

Usage::

    python benchmarks/opencv_differences.py MODEL THRESHOLD IMAGE:SCALES [IMAGE:SCALES ...]
    python benchmarks/opencv_differences.py .../voc-release3.1/VOC2007/person_final.mat -0.5 \\
        .../voc-release3.1/000034.jpg:1,2 .../person-voc/JPEGImages/pets_0001.jpg:2

The model's cascade is dropped and it is written with every threshold at ``-inf`` (OpenCV then scores
every window it visits exactly), then detected by OpenCV (``tools/opencv_dpm_detect.cpp``, built here)
and by ``dpm.detect`` twice: release 3.1's exact detector (root boxes, no clipping) and the same XML read
as a release-5 star model (``read_opencv_star_model``: OpenCV's padding and truncation feature, dpm's
resize).  Prints, per image and scale, how many detections each finds above the threshold, how many of
OpenCV's have a dpm box with IoU >= 0.7 (and the other way), and the score differences of those pairs.
Needs g++ and ``pkg-config opencv4`` with opencv_contrib.
"""
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dpm  # noqa: E402
from dpm.image import read_image  # noqa: E402
from dpm.model.opencv import read_opencv_star_model, write_opencv_xml  # noqa: E402
from voc.matching import box_overlaps  # noqa: E402

from bench_opencv import build_tool  # noqa: E402


def iou(a, b):
    return np.array([[box_overlaps(x[None, :4], y[None, :4])[0] for y in b] for x in a]).reshape(len(a), len(b))


def compare(name, oc, ours):
    if not len(oc) or not len(ours):
        print(f"    {name}: OpenCV {len(oc)}, dpm {len(ours)}")
        return
    ov = iou(oc, ours)
    j, matched = ov.argmax(1), ov.max(1) >= 0.7
    ds = oc[matched, 4] - ours[j[matched], 4]
    print(f"    {name}: OpenCV {len(oc)}, dpm {len(ours)}; OpenCV's matched (IoU>=0.7) {matched.sum()}, dpm's "
          f"matched {(ov.max(0) >= 0.7).sum()}; score OpenCV-dpm mean {ds.mean():+.3f} max|.| "
          f"{np.abs(ds).max():.3f}; top OpenCV {oc[0, 4]:.3f} dpm {ours[0, 4]:.3f}")


def main():
    model_path, thr = sys.argv[1], float(sys.argv[2])
    model = dpm.load_model(model_path)
    model.cascade, model.thresh = None, thr
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_tool(Path(tmp))
        xml = write_opencv_xml(model, Path(tmp) / "model.xml")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            star = read_opencv_star_model(xml)
        for arg in sys.argv[3:]:
            img, scales = arg.rsplit(":", 1)
            im = read_image(img)
            for up in (int(u) for u in scales.split(",")):
                out = subprocess.run([str(exe), str(xml), str(up), img], capture_output=True, text=True,
                                     check=True).stdout
                oc = np.array([[float(v) for v in line.split()[1:]] for line in out.splitlines()]).reshape(-1, 5)
                oc[:, :4] += 1
                d = dpm.detect(im, model, upsample=up, bbox_prediction=False, clip=False, cascade=False,
                               threshold=thr)
                r5 = dpm.detect(im, star, upsample=up, threshold=thr)
                print(f"{Path(img).name} at {up}x, threshold {thr}:")
                compare("dpm release 3.1 exact", oc, np.c_[d.root_boxes, d.scores])
                compare("dpm as release-5 star", oc, np.c_[r5.boxes, r5.scores])


if __name__ == "__main__":
    main()
