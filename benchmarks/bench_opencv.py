"""OpenCV's C++ DPM detector against dpm's own, same model, same images: AP and counts.

Usage::

    python benchmarks/bench_opencv.py [--voc /work/shared/data/person-voc] [--split test] [--scale 2]
        [--images N] [--opencv-xml inriaperson.xml]

Needs ``g++`` and OpenCV with opencv_contrib (``pkg-config opencv4``; Debian:
``libopencv-contrib-dev libopencv-dev``).  Runs, on the split's images enlarged
``--scale`` times:

1. the built-in person model (with its star-cascade) exported by
   ``dpm.model.opencv.write_opencv_xml`` and run by ``tools/opencv_dpm_detect.cpp``,
   against ``dpm.detect`` of the same model (default: cascade and box prediction;
   also without box prediction, OpenCV has none);
2. with ``--opencv-xml``: that OpenCV model run by OpenCV, against the same file
   read by ``read_opencv_star_model`` and detected by ``dpm.detect`` (release 5's
   semantics, exact) and by ``read_opencv_xml`` (release 3.1's, with the cascade).

OpenCV's boxes (0-based) are shifted to 1-based; every box is clipped to its image (dpm clips its own).
Prints one line per run: AP (VOC07), detections, time.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dpm  # noqa: E402
import voc  # noqa: E402
from dpm.data import builtin_model_path  # noqa: E402
from dpm.image import read_image  # noqa: E402
from dpm.model.opencv import (anchored_box_prediction, apply_box_prediction, read_opencv_star_model,  # noqa: E402
                              read_opencv_xml, write_opencv_xml)

ROOT = Path(__file__).resolve().parents[1]


def build_tool(out_dir: Path) -> Path:
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "opencv4"], check=True, capture_output=True,
                           text=True).stdout.split()
    exe = out_dir / "opencv_dpm_detect"
    subprocess.run(["g++", "-O2", "-o", str(exe), str(ROOT / "tools" / "opencv_dpm_detect.cpp"), *flags], check=True)
    return exe


def run_opencv(exe, xml, paths, scale):
    t0 = time.perf_counter()
    out = subprocess.run([str(exe), str(xml), str(scale), *map(str, paths)], check=True, capture_output=True,
                         text=True).stdout
    elapsed = time.perf_counter() - t0
    dets = {p.stem: [] for p in paths}
    for line in out.splitlines():
        name, *vals = line.split()
        x1, y1, x2, y2, s = (float(v) for v in vals)
        dets[Path(name).stem].append([x1 + 1, y1 + 1, x2 + 1, y2 + 1, s])
    return {k: np.array(v).reshape(-1, 5) for k, v in dets.items()}, elapsed


def run_dpm(model, images, scale, **kw):
    t0 = time.perf_counter()
    dets = {}
    for name, im in images.items():
        d = dpm.detect(im, model, upsample=scale, **kw)
        dets[name] = np.c_[d.boxes, d.scores].reshape(-1, 5)
    return dets, time.perf_counter() - t0


def predicted(dets, matrix):
    """Root boxes through the anchored box prediction."""
    return {name: np.c_[apply_box_prediction(d[:, :4], matrix), d[:, 4]] for name, d in dets.items()}


def report(label, dets, gt, elapsed, shapes):
    """AP of ``dets`` (boxes clipped to their image, as dpm clips its own)."""
    dets = {k: np.c_[np.clip(v[:, :4], 1, np.tile(shapes[k][::-1], 2)), v[:, 4]] for k, v in dets.items()}
    dets = {**{i: np.zeros((0, 5)) for i in gt.image_ids}, **dets} if hasattr(gt, "image_ids") else dets
    r = voc.evaluate(dets, gt, "person")
    n = sum(len(v) for v in dets.values())
    print(f"{label:58s} AP {r.ap:.4f}  detections {n:5d}  {elapsed:7.1f} s", flush=True)
    return r.ap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voc", default="/work/shared/data/person-voc")
    ap.add_argument("--split", default="test")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--opencv-xml", default=None)
    args = ap.parse_args()
    ds = voc.VOCDataset(args.voc)
    ids = ds.image_ids(args.split)[:args.images]
    gt = ds.ground_truth("person", args.split)
    paths = [ds.image_path(i) for i in ids]
    images = {i: read_image(p) for i, p in zip(ids, paths)}
    shapes = {i: im.shape[:2] for i, im in images.items()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exe = build_tool(tmp)
        model = dpm.load_model(builtin_model_path("person"))
        xml = write_opencv_xml(model, tmp / "person.xml")
        print(f"{len(ids)} images of {args.voc} {args.split} at {args.scale}x; built-in person model {model}")
        d, t = run_opencv(exe, xml, paths, args.scale)
        od = {k: v.copy() for k, v in d.items()}
        a = report("OpenCV C++ (exported person.xml)", d, gt, t, shapes)
        d, t = run_dpm(model, images, args.scale)
        b = report("dpm.detect (cascade, box prediction)", d, gt, t, shapes)
        d, t = run_dpm(model, images, args.scale, bbox_prediction=False, clip=False)
        dd = {k: v.copy() for k, v in d.items()}
        c = report("dpm.detect (cascade, root boxes)", d, gt, t, shapes)
        print(f"AP difference OpenCV - dpm: {a - b:+.4f} (box prediction), {a - c:+.4f} (root boxes)")
        if len(model.components) == 1:   # OpenCV does not report the component
            matrix = anchored_box_prediction(model)[0]
            a2 = report("OpenCV C++ + anchored box prediction", predicted(od, matrix), gt, 0.0, shapes)
            c2 = report("dpm.detect root boxes + anchored box prediction", predicted(dd, matrix), gt, 0.0, shapes)
            print(f"AP difference OpenCV - dpm: {a2 - c2:+.4f} (both anchored), {a2 - b:+.4f} (against dpm's "
                  "own box prediction)")
        if args.opencv_xml:
            d, t = run_opencv(exe, args.opencv_xml, paths, args.scale)
            a = report(f"OpenCV C++ ({Path(args.opencv_xml).name})", d, gt, t, shapes)
            star = read_opencv_star_model(args.opencv_xml)
            d, t = run_dpm(star, images, args.scale)
            b = report("dpm.detect (read_opencv_star_model, release 5, exact)", d, gt, t, shapes)
            m31 = read_opencv_xml(args.opencv_xml)
            d, t = run_dpm(m31, images, args.scale)
            c = report("dpm.detect (read_opencv_xml, release 3.1, cascade)", d, gt, t, shapes)
            print(f"AP difference OpenCV - dpm: {a - b:+.4f} (star model), {a - c:+.4f} (release-3.1 model)")


if __name__ == "__main__":
    main()
