"""Detections with fast features against exact features (docs/detection.md, "Fast features").

Usage::

    python benchmarks/fast_features_accuracy.py

For 000034.jpg (../shared/models/voc-release3.1/, override with DPM_SHARED)
and the models of the docs' figures (the built-in ``person``,
``voc2007/person``, ``voc2007/car``; the exact detector, cascade=False), at
the model's threshold and at -1, prints the number of detections (after
suppression) and of raw detections with each kind of features, whether the
boxes, part boxes, components and levels are the same, and the largest score
difference.  Also a person-voc frame upsampled twice (``pets_0001.jpg``) with
``voc2007/person``, as detection with ``--upsample 2`` sees it.
"""
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dpm  # noqa: E402
from dpm.data import resolve_models  # noqa: E402
from dpm.detection import detect, detect_raw  # noqa: E402
from dpm.image import upsample_image  # noqa: E402

SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))


def compare(label, image, model, threshold, upsample=1):
    exact = detect(image, model, threshold=threshold, upsample=upsample, exact_features=True)
    fast = detect(image, model, threshold=threshold, upsample=upsample)
    work = upsample_image(image, upsample) if upsample > 1 else image
    t = model.thresh if threshold is None else threshold
    raw_exact = detect_raw(work, model, t, exact_features=True)
    raw_fast = detect_raw(work, model, t)
    same = len(exact) == len(fast) and all(
        np.array_equal(getattr(exact, f), getattr(fast, f))
        for f in ("boxes", "part_boxes", "components", "levels"))
    raw_same = len(raw_exact) == len(raw_fast) and np.array_equal(raw_exact.boxes, raw_fast.boxes)
    diff = float(np.abs(exact.scores - fast.scores).max()) if same and len(exact) else float("nan")
    raw_diff = float(np.abs(raw_exact.scores - raw_fast.scores).max()) if raw_same and len(raw_exact) else float("nan")
    print(f"{label:44} threshold {t:6.3f}: {len(exact):4} / {len(fast):4} detections, "
          f"{len(raw_exact):5} / {len(raw_fast):5} raw (exact / fast); same boxes: {same} (raw {raw_same}); "
          f"max score difference {diff:.2g} (raw {raw_diff:.2g})")


def main():
    demo = SHARED / "models" / "voc-release3.1" / "000034.jpg"
    if not demo.exists():
        sys.exit(f"{demo} is absent")
    image = dpm.read_image(demo)
    for name in ("person", "voc2007/person", "voc2007/car"):
        model = dataclasses.replace(resolve_models(name)[0], cascade=None)   # the exact detector
        for threshold in (None, -1.0):
            compare(f"000034.jpg {name}", image, model, threshold)
    frame = SHARED / "data" / "person-voc" / "JPEGImages" / "pets_0001.jpg"
    if frame.exists():
        model = dataclasses.replace(resolve_models("voc2007/person")[0], cascade=None)
        compare("pets_0001.jpg voc2007/person, upsample 2", dpm.read_image(frame), model, None, upsample=2)


if __name__ == "__main__":
    main()
