import numpy as np
import pytest

from dfprep.crop import box_in_crop, crop_face, cut_square, square_box


def test_square_box_is_enlarged_and_centred():
    x0, y0, side = square_box((100, 50, 200, 250), margin=0.3)  # w=100, h=200
    assert side == 260
    assert (x0 + side / 2, y0 + side / 2) == (150, 150)


def test_box_lands_centred_with_the_margin_inside_the_crop():
    box = (400.0, 300.0, 520.0, 450.0)
    x1, y1, x2, y2 = box_in_crop(box, 0.3, 224)
    assert (x1 + x2) / 2 == pytest.approx(112, abs=1)
    assert (y1 + y2) / 2 == pytest.approx(112, abs=1)
    assert max(x2 - x1, y2 - y1) == pytest.approx(224 / 1.3, abs=1.5)


def test_outside_pixels_are_black_and_face_stays_centred():
    img = np.full((100, 100, 3), 200, np.uint8)
    out = cut_square(img, -20, -10, 60)
    assert out.shape == (60, 60, 3)
    assert (out[:10] == 0).all() and (out[:, :20] == 0).all()
    assert (out[10:, 20:] == 200).all()


def test_square_fully_outside_gives_black():
    img = np.full((50, 50, 3), 9, np.uint8)
    assert not cut_square(img, 100, 100, 10).any()


@pytest.mark.parametrize("side", [50, 224, 700])
def test_crop_face_size_and_content(side):
    img = np.zeros((1080, 1920, 3), np.uint8)
    # a white square "face" of the given side centred at (960, 540)
    h = side // 2
    img[540 - h : 540 + h, 960 - h : 960 + h] = 255
    crop = crop_face(img, (960 - h, 540 - h, 960 + h, 540 + h), 0.3, 224)
    assert crop.shape == (224, 224, 3)
    # the face occupies 1/1.3 of the crop, centred
    inner = 224 / 1.3
    lo, hi = int(112 - inner / 2) + 3, int(112 + inner / 2) - 3
    assert crop[lo:hi, lo:hi].mean() > 250
    assert crop[: lo - 6].mean() < 5 and crop[hi + 6 :].mean() < 5
