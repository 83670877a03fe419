"""Results files and drawings: one writer for every format.

* :class:`ResultsWriter`: csv, json, the VOC devkit's format and COCO results, streamed in
  input order to a temporary file renamed into place at the end (kept and
  marked partial if the run stops early), under an exclusive lock;
* :class:`PerClassWriter`: one VOC devkit file per class, into a folder;
* :func:`write_batch`: a batch of per-image results (or per-image failures)
  into a writer, and optionally into :class:`Drawings`;
* :func:`drawing_names`: collision-free names for ``--draw`` outputs.

See docs/output.md for the formats and what the user sees on each failure.
"""
from .drawings import Drawings, drawing_names
from .formats import (FORMATS, PARTIAL_MARK, RecordError, ResultsFormat, RunStatus, check_voc_image_id,
                      format_number, get_format)
from .perclass import PerClassWriter, voc_results_name
from .run import write_batch
from .writer import ResultsWriter

__all__ = ["ResultsWriter", "PerClassWriter", "voc_results_name", "write_batch", "Drawings", "drawing_names", "FORMATS", "get_format",
           "ResultsFormat", "RecordError", "RunStatus", "PARTIAL_MARK", "check_voc_image_id",
           "format_number"]
