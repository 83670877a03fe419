"""Star-cascade detection (spec star-cascade.md): PCA of HOG, cascade thresholds, pruned detection."""
from .types import DEFAULT_WINDOW, Cascade, CascadeComponent, project

__all__ = ["Cascade", "CascadeComponent", "DEFAULT_WINDOW", "project"]
