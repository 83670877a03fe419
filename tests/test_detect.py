"""Detection parity with the original process.m pipeline (golden/detect.npz)."""
import numpy as np
import pytest

from dpm.boxes import clip_boxes, nms, predict_boxes
from dpm.detection import Detections, detect, detect_raw
from dpm.detection.finish import unscale_boxes
from dpm.model import load_model

CASES = {
    "p061": ("000061", "VOC2007/person_final.mat"),
    "p034": ("000034", "VOC2007/person_final.mat"),
    "c034": ("000034", "VOC2007/car_final.mat"),
    "b084": ("000084", "VOC2007/bicycle_final.mat"),
    "i061": ("000061", "INRIA/inria_final.mat"),
}


def assert_rows_match(ours, theirs, what):
    """Same count and order; coordinates within 1e-3 pixel, scores within 1e-4."""
    assert ours.shape == theirs.shape, f"{what}: {ours.shape} rows vs the original's {theirs.shape}"
    if theirs.size == 0:
        return
    np.testing.assert_allclose(ours[:, :-1], theirs[:, :-1], rtol=0, atol=1e-3, err_msg=what)
    np.testing.assert_allclose(ours[:, -1], theirs[:, -1], rtol=0, atol=1e-4, err_msg=what)


@pytest.fixture(scope="module")
def loaded(golden, models_dir):
    models = {}

    def get(case):
        im_name, model_file = CASES[case]
        if model_file not in models:
            models[model_file] = load_model(models_dir / model_file)
        return golden("features")[f"im_{im_name}"], models[model_file]

    return get


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("suffix", ["", "0"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_process_pipeline_matches_original(case, suffix, dtype, golden, loaded):
    g = golden("detect")
    image, model = loaded(case)
    thresh = float(g[f"{case}_thresh"]) if suffix == "" else 0.0
    assert model.thresh == pytest.approx(float(g[f"{case}_thresh"]))
    raw = detect_raw(image, model, thresh, dtype=dtype)
    raw_rows = raw.to_raw()
    assert_rows_match(raw_rows, g[f"{case}_raw{suffix}"].reshape(-1, raw_rows.shape[1]), f"{case} raw")
    boxes = predict_boxes(raw.root_boxes, raw.part_boxes, raw.components,
                          [c.bbox_regressor for c in model.components])
    gb = np.column_stack([boxes, raw.scores])
    assert_rows_match(gb, g[f"{case}_getboxes{suffix}"].reshape(-1, 5), f"{case} getboxes")
    picked = nms(gb, 0.5)
    assert_rows_match(picked, g[f"{case}_nms{suffix}"].reshape(-1, 5), f"{case} nms")
    clipped = np.column_stack([clip_boxes(picked[:, :4], image.shape), picked[:, 4]]) if len(picked) else picked
    assert_rows_match(clipped, g[f"{case}_clip{suffix}"].reshape(-1, 5), f"{case} clip")
    # the one-call API gives the same final boxes
    dets = detect(image, model, threshold=thresh, dtype=dtype)
    assert_rows_match(np.column_stack([dets.boxes, dets.scores]), g[f"{case}_clip{suffix}"].reshape(-1, 5),
                      f"{case} detect()")


def test_default_precision_is_float32_and_float64_is_the_original(golden, loaded):
    image, model = loaded("p061")
    a = detect_raw(image, model, -0.5)
    b = detect_raw(image, model, -0.5, dtype=np.float32)
    c = detect_raw(image, model, -0.5, dtype=np.float64)
    np.testing.assert_array_equal(a.to_raw(), b.to_raw())
    assert len(a) == len(c) > 0
    np.testing.assert_array_equal(a.to_raw()[:, :-1], c.to_raw()[:, :-1])
    np.testing.assert_allclose(a.scores, c.scores, rtol=0, atol=1e-5)
    assert not np.array_equal(a.scores, c.scores)  # the float32 responses do differ in the last bits


def test_level_scores_argmax_equals_full_transform(golden, loaded):
    from dpm.detection import PreparedModel, score_levels
    from dpm.dt import distance_transform
    from dpm.features import feature_pyramid

    image, model = loaded("i061")
    pyr = feature_pyramid(image, model.sbin, model.interval)
    prepared = PreparedModel(model)
    ls = next(score_levels(pyr, model, prepared))
    assert ls.root_features.dtype == np.float64 and ls.scores[0].dtype == np.float64
    resp = prepared.parts.convolve(ls.part_features)
    comp = model.components[0]
    for j, part in enumerate(comp.parts):
        ix, iy = distance_transform(-resp[prepared.part_index[0][j]], *part.deformation)[1:]
        am = ls.argmax[0][j]
        full_ix, full_iy = am.full()
        rows = slice(part.anchor[1], None, 2)
        cols = slice(part.anchor[0], None, 2)
        h, w = am.ix.shape
        assert (h, w) == ls.scores[0].shape  # every probe is inside the part map here
        np.testing.assert_array_equal(full_ix[rows, cols][:h, :w], ix[rows, cols][:h, :w])
        np.testing.assert_array_equal(full_iy[rows, cols][:h, :w], iy[rows, cols][:h, :w])
        assert (full_ix[part.anchor[1] + 1::2] == -1).all()
        assert (full_ix[:, part.anchor[0] + 1::2] == -1).all()
        ys, xs = np.mgrid[:ls.scores[0].shape[0], :ls.scores[0].shape[1]]
        py, px = 2 * ys + part.anchor[1], 2 * xs + part.anchor[0]
        gx, gy = am.at(py, px)
        np.testing.assert_array_equal(gx, ix[py, px])
        np.testing.assert_array_equal(gy, iy[py, px])
        with pytest.raises(IndexError):
            am.at(part.anchor[1] + 1, part.anchor[0])
        with pytest.raises(IndexError):
            am.at(part.anchor[1], part.anchor[0] + 1)


def test_detections_indexing_and_raw_layout(golden, loaded):
    image, model = loaded("p061")
    dets = detect(image, model, threshold=0.0)
    assert len(dets) == 2 and dets.part_boxes.shape == (2, 6, 4)
    first = dets[0]
    assert len(first) == 1 and first.scores[0] == dets.scores[0]
    assert dets[dets.scores > 0.5].scores.tolist() == [dets.scores[0]]
    assert dets.to_raw().shape == (2, 30)
    assert Detections.empty(6).to_raw().shape == (0, 30)


def test_grey_and_float_images_equal_their_rgb_uint8(golden, loaded):
    _, model = loaded("i061")
    grey = golden("features")["im_gray1"]
    a = detect_raw(grey, model, -3.0)
    b = detect_raw(np.repeat(grey[:, :, None], 3, axis=2).astype(np.float64), model, -3.0)
    np.testing.assert_array_equal(a.to_raw(), b.to_raw())


def test_unscale_maps_pixels_back():
    # pixel p of the original is pixels 2p-1..2p of the 2x image
    b = np.array([[1.0, 3.0, 20.0, 40.0]])
    np.testing.assert_allclose(unscale_boxes(b, 2), [[1.0, 2.0, 10.0, 20.0]])
    np.testing.assert_allclose(unscale_boxes(np.array([[4.0, 7.0, 9.0, 12.0]]), 3), [[2.0, 3.0, 3.0, 4.0]])


def test_upsample_finds_small_objects_at_half_the_coordinates(golden, loaded):
    from dpm.boxes import iou

    image, model = loaded("p061")
    small = image[::2, ::2]
    big = detect(small, model, threshold=0.0, upsample=2)
    assert big.image_shape == small.shape[:2]
    assert (big.boxes[:, 2] <= small.shape[1]).all() and (big.boxes[:, 3] <= small.shape[0]).all()
    # both people of 000061 are found again, at half their full-resolution boxes
    full = detect(image, model, threshold=0.0)
    assert len(big) == len(full) == 2
    for box in full.boxes:
        assert iou(box / 2, big.boxes).max() > 0.9


def test_image_smaller_than_model(loaded):
    from dpm.detection import check_image_size

    _, model = loaded("i061")  # root 15x5 cells = 120x40 pixels
    tiny = np.zeros((20, 12, 3), dtype=np.uint8)
    dets = detect(tiny, model)  # runs (on the padding only), like the original, and finds nothing
    assert len(dets) == 0 and dets.part_boxes.shape == (0, 6, 4)
    assert len(detect(np.zeros((2, 2, 3)), model, threshold=-100)) >= 0  # smaller than 3 cells: no crash
    with pytest.raises(ValueError, match=r"smaller than the model.*--upsample"):
        check_image_size(tiny.shape, model)
    check_image_size((120, 40), model)
    with pytest.raises(ValueError, match="smaller than the model"):
        check_image_size((100, 40), model)
    check_image_size((60, 20), model, upsample=2)


def test_bad_arguments(loaded):
    _, model = loaded("i061")
    with pytest.raises(ValueError, match="upsample"):
        detect(np.zeros((50, 50, 3)), model, upsample=0)
    with pytest.raises(ValueError, match="shape"):
        detect(np.zeros((50, 50, 5)), model)
