"""Visualising models, features and detections (voc-release3.1 spec §1.16).

:mod:`dpm.vis.pictures` makes the pictures as plain arrays (``foldHOG.m``,
``HOGpicture.m``, ``visualizemodel.m``); :mod:`dpm.vis.figures` lays them out
as matplotlib figures, headless unless a figure is passed in, and draws
detection boxes for ``dpm-detect --draw``; :mod:`dpm.vis.save` writes figures
to files.
"""
from .figures import (PART_COLOUR, ROOT_COLOUR, box_patch_geometry, display_available, draw_detections,
                      save_detections_image, show_features, show_model)
from .pictures import (BS, DEF_SCALE, PAD, features_picture, fold_hog, hog_glyphs, hog_picture,
                       imresize_bicubic, model_pictures)
from .save import check_output_path, save_figure

__all__ = [
    "BS", "PAD", "DEF_SCALE", "ROOT_COLOUR", "PART_COLOUR",
    "fold_hog", "hog_glyphs", "hog_picture", "imresize_bicubic", "model_pictures", "features_picture",
    "show_model", "show_features", "draw_detections", "box_patch_geometry", "save_detections_image",
    "save_figure", "check_output_path", "display_available",
]
