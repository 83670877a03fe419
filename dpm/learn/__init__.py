"""The latent-SVM learner: in-memory example sets and ``fit_lsvm``.

This is voc-release3.1 ``learn.cc`` (spec §1.12) without its temporary files.
Examples live in an :class:`ExampleSet`, a sparse block layout like the ``.dat``
records; :func:`fit_lsvm` removes exact duplicates, collapses examples that
share their label ints into latent groups, and runs the compiled SGD loop of
``dpm._learn``.

The objective (Felzenszwalb et al., PAMI 2010, eq. 11, with learn.cc's
per-block multipliers) is::

    0.5 * sum_b regmult_b * |w_b|^2 + C * sum_g c_g * max(0, 1 - y_g * max_{m in g} w . x_m)

with ``c_g = J`` for positive groups and 1 for negative ones; ``learnmult_b``
scales block ``b``'s steps only.

References
----------
P. Felzenszwalb, R. Girshick, D. McAllester, D. Ramanan, "Object Detection with
Discriminatively Trained Part Based Models", IEEE TPAMI 32(9), 2010.

The package, in the order the data flows:

* :mod:`.examples`: :class:`ExampleSet`, the in-memory example store (the ``.dat`` records);
* :mod:`.layout`: :class:`BlockLayout`, the weight blocks and their multipliers (the ``.hdr``);
* :mod:`.groups`: exact duplicates removed, latent groups (:func:`collapse_examples`);
* :mod:`.fit`: the objective, the stopping rule and :func:`fit_lsvm` (the compiled loop ``dpm._learn``).
"""
from .examples import LABELSIZE, ExampleSet
from .fit import INCACHE, ITER, WAIT, LearnResult, Objective, StoppingRule, fit_lsvm, lsvm_objective, \
    lsvm_subgradient, score_examples
from .groups import Collapsed, collapse_examples
from .layout import BlockLayout

__all__ = [
    "ExampleSet", "BlockLayout", "StoppingRule", "LearnResult", "Objective", "Collapsed",
    "fit_lsvm", "collapse_examples", "lsvm_objective", "lsvm_subgradient", "score_examples",
    "ITER", "INCACHE", "WAIT", "LABELSIZE",
]
