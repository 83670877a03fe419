"""dpm: Deformable Part Model object detection, a Python port of voc-release3.1.

Public names are imported lazily, so ``import dpm`` stays cheap::

    import dpm
    model = dpm.load_model("person_final.mat")
    image = dpm.read_image("000061.jpg")
    detections = dpm.detect(image, model)

    import voc
    model, summary = dpm.train(voc.training_data("VOC2007", "person"), "person", components=1,
                               out="person.npz", n_jobs=2)
"""
import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # model type and files
    "Model": "dpm.model", "Component": "dpm.model", "Part": "dpm.model", "Block": "dpm.model",
    "load_model": "dpm.model", "save_model": "dpm.model",
    # features
    "hog": "dpm.features", "resize": "dpm.features", "feature_pyramid": "dpm.features",
    "FeaturePyramid": "dpm.features", "flip_features": "dpm.features",
    # detection
    "detect": "dpm.detection", "detect_raw": "dpm.detection", "Detections": "dpm.detection", "read_image": "dpm.image",
    "nms": "dpm.boxes", "clip_boxes": "dpm.boxes",
    # learning and training
    "ExampleSet": "dpm.learn", "fit_lsvm": "dpm.learn", "LearnResult": "dpm.learn",
    "train": "dpm.training.schedule", "TrainConfig": "dpm.training.config",
    "TrainingData": "dpm.training.data",
    # star-cascade
    "build_cascade": "dpm.cascade.build",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dpm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
