"""Built-in models shipped inside the package.

Each built-in model is a ``<name>.npz`` file in this folder, in the project's
own model format, with a line in ``MODELS`` saying what it is and how it was
made.
"""
from __future__ import annotations

from pathlib import Path

from ..model import Model, load_model

__all__ = ["builtin_models", "builtin_model_path", "resolve_model"]

HERE = Path(__file__).parent

# name -> one-line description (training command and measured AP live in docs/training.md)
MODELS = {
    "person": "1-component person model trained by dpm-train on the person-voc dataset",
}


def builtin_models() -> dict:
    """Names and descriptions of the built-in models that are installed."""
    return {name: desc for name, desc in MODELS.items() if (HERE / f"{name}.npz").exists()}


def builtin_model_path(name: str) -> Path:
    """Path of a built-in model file; ``ValueError`` if there is no such model."""
    path = HERE / f"{name}.npz"
    if name not in MODELS or not path.exists():
        avail = ", ".join(builtin_models()) or "none installed"
        raise ValueError(f"no built-in model named {name!r} (built-in models: {avail})")
    return path


def resolve_model(spec) -> Model:
    """Load a model from a file path or a built-in model name.

    A path that exists wins over a built-in name.
    """
    p = Path(spec)
    if p.exists():
        return load_model(p)
    if p.suffix == "" and p.name == str(spec) and str(spec) in MODELS:
        return load_model(builtin_model_path(str(spec)))
    avail = ", ".join(builtin_models()) or "none installed"
    raise FileNotFoundError(f"{spec}: no such model file, and not a built-in model name (built-in: {avail})")
