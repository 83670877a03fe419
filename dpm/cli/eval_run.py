"""``dpm-eval``'s detection pass: every model over the evaluation set, one pyramid per image, resumable.

The images of the set (a VOC split or a COCO file, optionally restricted to
the ids of a ``--list``) are detected in with all the models at once
(:func:`dpm.detection.batch.detect_files` with a ``{class: Model}`` dict) and each
class's detections are written, image by image, to its devkit results file
``comp3_det_<split>_<class>.txt`` through a resumable
:class:`dpm.output.PerClassWriter`: a run stopped any way (Ctrl+C, SIGKILL)
is continued by ``--resume`` from those files without detecting its finished
images again, and the finished files are byte-identical to an uninterrupted
run's.  The detections are then read back from the files, so that the scores
of a resumed run are those of an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ._common import cluster_executor, jobs, show_progress
from .detect import model_key, on_workers, skip_done

log = logging.getLogger("dpm.cli.eval")

__all__ = ["DetectionRun", "restrict_to_list", "detect_evaluation_set"]


@dataclass
class DetectionRun:
    """What the detection pass leaves: per class its results file and detections, and the run's status."""

    results_paths: dict      # class -> Path of comp3_det_<split>_<class>.txt
    results: dict            # class -> voc.Results, read back from the file
    seconds_per_image: float
    status: object           # dpm.output.RunStatus
    resumed: int             # images an interrupted run had done


def restrict_to_list(evalset, source):
    """The images of ``evalset`` named in the list ``source`` (a file, ``"-"`` for stdin), in the set's order.

    A line is an image id of the set (VOC id; COCO image id), or the path or
    file name of one of its images.
    """
    from ..detection.batch import read_image_list

    if source != "-" and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such list of images")
    by_path = {str(Path(p).resolve()): i for p, i in zip(evalset.paths, evalset.voc_ids)}
    by_name = {Path(p).name: i for p, i in zip(evalset.paths, evalset.voc_ids)}
    known = set(evalset.voc_ids)
    ids = []
    for line in read_image_list(source):
        if line in known:
            ids.append(line)
        elif str(Path(line).resolve()) in by_path:
            ids.append(by_path[str(Path(line).resolve())])
        else:
            ids.append(by_name.get(Path(line).name, line))
    if not ids:
        raise ValueError(f"{'standard input' if source == '-' else source}: lists no images")
    name = "the list on standard input" if source == "-" else f"list {source}"
    return evalset.select(ids, what=name)


def _key(args, models: dict, evalset) -> dict:
    """What a resumed evaluation must share with the interrupted one."""
    return {"model": model_key(models), "classes": list(models), "dataset": str(Path(evalset.name).resolve())
            if Path(evalset.name).exists() else evalset.name, "split": evalset.split,
            "images": hashlib.sha256("\n".join(evalset.voc_ids).encode("utf-8", "surrogateescape")).hexdigest()[:16],
            "threshold": args.threshold, "upsample": args.upsample, "bbox_prediction": not args.no_bbox_prediction,
            **({"exact": True} if args.exact else {})}


def detect_evaluation_set(args, evalset, out_dir: Path, models: dict) -> DetectionRun:
    """Detect with ``models`` (``{class: Model}``) over ``evalset``, writing each class's results file.

    An image that fails is listed in the status and has no detections: as in
    the devkit, its objects then count as missed.
    """
    import voc

    from ..detection.batch import detect_files
    from ..output import PerClassWriter, write_batch

    # absolute: the workers of a cluster have their own working folder (the results name image ids)
    paths, ids, split = [Path(p).absolute() for p in evalset.paths], list(evalset.voc_ids), evalset.split
    if not any(p.is_file() for p in paths):
        raise ValueError(f"none of the {len(paths)} images of split {split!r} is there (first: {paths[0]})")
    log.info("detecting %s in %d image(s) of split %s of %s (threshold %s, upsample %d, %d job(s))",
             ", ".join(models), len(paths), split, evalset.name,
             "the models' own" if args.threshold is None else f"{args.threshold:g}", args.upsample, jobs(args))
    options = dict(threshold=args.threshold, upsample=args.upsample, bbox_prediction=not args.no_bbox_prediction,
                   max_memory=args.max_memory, **({"cascade": False} if args.exact else {}))
    writer = PerClassWriter(out_dir, list(models), split=split, total=len(ids), resumable=True,
                            resume=args.resume, key=_key(args, models, evalset))
    t0 = time.perf_counter()
    with cluster_executor(args) as executor, writer as out:
        todo = skip_done(paths, out.resumed, out.resumed_last)
        if executor is not None:
            results = on_workers(todo, lambda ps: detect_files(ps, models, executor=executor,
                                                               progress=show_progress(args),
                                                               total=max(0, len(paths) - out.resumed), **options))
        else:
            results = detect_files(list(todo), models, n_jobs=jobs(args), progress=show_progress(args), **options)
        status = write_batch(results, out, image_ids=ids[out.resumed:])
    seconds = (time.perf_counter() - t0) / max(1, status.done - out.resumed)
    if out.resumed:
        log.info("resumed after %d image(s); detected in %d", out.resumed, status.done - out.resumed)
    read = {c: voc.read_results(p, image_ids=ids) for c, p in writer.paths.items()}
    return DetectionRun(dict(writer.paths), read, seconds, status, out.resumed)
