"""Evaluation harness: score blur maps (DBD) and defocus maps (DME) under the protocols of published work.

>>> import numpy as np
>>> from defocus.evaluate import evaluate_maps
>>> gt = np.zeros((4, 4), np.float32); gt[:, 2:] = 1          # right half out of focus
>>> res = evaluate_maps([("a", gt)], [("a", gt)], protocol="ddffnet")
>>> round(res.summary["fbeta"], 3), round(res.summary["mae"], 3), round(res.summary["iou"], 3)
(1.0, 0.0, 1.0)

To run a registered method on a dataset and score it (what ``defocus evaluate --method`` and the benchmark scripts
do): ``evaluate_method("lbp", defocus.data.open_dataset("folder", "my_set"))``.

Protocols (see :mod:`defocus.evaluate.protocols` and ``docs/evaluation.md`` for the exact definitions):
``ddffnet``, ``dd``, ``zhao``, ``pysod``, ``br2net`` (DBD) and ``rtf`` (DME).
"""

from .core import DEFAULT_PROTOCOLS, Evaluation, Result, evaluate_maps, evaluate_method
from .metrics import BETA2, Confusion, f_beta
from .protocols import PROTOCOLS, EvaluationError, Protocol, get_protocol
from .report import plot_curves, summary_table, to_json, write_csv, write_json, write_markdown

__all__ = [
    "BETA2",
    "DEFAULT_PROTOCOLS",
    "PROTOCOLS",
    "Confusion",
    "Evaluation",
    "EvaluationError",
    "Protocol",
    "Result",
    "evaluate_maps",
    "evaluate_method",
    "f_beta",
    "get_protocol",
    "plot_curves",
    "summary_table",
    "to_json",
    "write_csv",
    "write_json",
    "write_markdown",
]
