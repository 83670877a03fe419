"""Progress bars for long work: tqdm on stderr, with the time left."""
from __future__ import annotations

import sys
from contextlib import contextmanager


class _Silent:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s="", refresh=True):
        pass


@contextmanager
def progress_bar(total=None, desc="", unit="it", enabled=True):
    """A context manager yielding an object with ``update(n)``.

    With ``enabled=False`` nothing is shown.  The bar shows the elapsed time and
    an estimate of the time left.
    """
    if not enabled:
        yield _Silent()
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                          "[{elapsed}<{remaining}, {rate_fmt}]")
    try:
        yield bar
    finally:
        bar.close()
