"""Every module of the package imports on its own: no import cycles hidden by the order of imports."""
import subprocess
import sys

from conftest import REPO

CHECK = r"""
import importlib, pkgutil, sys
import dpm
names = sorted(m.name for m in pkgutil.walk_packages(dpm.__path__, "dpm."))
bad = []
for name in names:
    for k in [k for k in sys.modules if k == "dpm" or k.startswith("dpm.")]:
        del sys.modules[k]          # each module first, as a user's script would import it
    try:
        importlib.import_module(name)
    except Exception as exc:
        bad.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names))
print("\n".join(bad))
"""


def test_every_module_imports_first():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    count, *bad = out.stdout.strip().split("\n")
    assert int(count) > 50                       # the walk found the package's modules
    assert [b for b in bad if b] == []
