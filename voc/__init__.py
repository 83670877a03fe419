"""voc: PASCAL VOC datasets (reading) and evaluation (the devkit's average precision)."""
