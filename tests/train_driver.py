"""Run the tiny training of tests/test_training_pipeline.py in a process of its own, for fault tests.

    python tests/train_driver.py VOC OUT CACHE JOBS [--kill-after-save N | --kill-before-commit N]

``--kill-after-save N`` SIGKILLs the whole process group (this process and its
workers) right after the N-th checkpoint is committed; ``--kill-before-commit N``
right before the N-th checkpoint's manifest is renamed into place (its data
files are written, the commit is not).  Without either, the run finishes.
Prints one line per checkpoint committed: ``saved <stage>``.
"""
import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv):
    voc, out, cache, jobs = argv[:4]
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from dpm.training import checkpoint
    from tests.test_training_pipeline import CONFIG, UPDATES
    from dpm.training.schedule import train

    mode, n = (argv[4], int(argv[5])) if len(argv) > 5 else (None, 0)
    saves = [0]
    commits = [0]
    real_save, real_replace = checkpoint.CheckpointStore.save, checkpoint._replace

    def kill_group():
        sys.stdout.flush()
        os.killpg(os.getpgrp(), signal.SIGKILL)

    def save(self, stage, *a, **k):
        r = real_save(self, stage, *a, **k)
        saves[0] += 1
        print(f"saved {stage}", flush=True)
        if mode == "--kill-after-save" and saves[0] == n:
            kill_group()
        return r

    def replace(src, dst):
        if Path(dst).name.startswith("stage-"):
            commits[0] += 1
            if mode == "--kill-before-commit" and commits[0] == n:
                kill_group()
        return real_replace(src, dst)

    checkpoint.CheckpointStore.save = save
    checkpoint._replace = replace
    from voc import training_data

    train(training_data(voc, "person"), "person", out=out, cache_dir=cache, n_jobs=int(jobs), config=CONFIG, max_updates=UPDATES,
          progress=False)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
