"""The pseudo-fake contact sheet: rows of (real, mask, fake) drawn with dfprep report's sheet."""

from __future__ import annotations

import pytest
from PIL import Image

from dfprep.core.errors import InputError
from dftrain.sbi.sheet import write_sheet
from sbi_helpers import face_crop, record, whole_crop_box, write_shard


def test_sheet_draws_three_tiles_per_real_crop(tmp_path):
    samples = []
    for i in range(4):
        image, lms = face_crop(i)
        samples.append((record(f"ffpp-v{i}_s00000_0", 0, whole_crop_box(), lms), image))
    image, lms = face_crop(9)
    samples.append((record("ffpp-fake_s00000_0", 1, whole_crop_box(), lms), image))  # not a real
    samples.append(
        (record("ffpp-shipped_s00000_0", 0, whole_crop_box(), [0.0] * 10), image)
    )  # no landmarks
    write_shard(tmp_path / "shards" / "ffpp-000000.tar", samples)
    out = write_sheet([tmp_path / "shards"], tmp_path / "sheet.png", margin=0.3, faces=3)
    with Image.open(out) as im:
        # report's layout: 2 triples a row (6 columns of 160 px + 4 px gaps), 9 tiles in 2 rows
        assert im.size == (6 * (160 + 4) + 4, 22 + 2 * (160 + 14 + 4) + 4)
        assert im.mode == "RGB"


def test_sheet_needs_real_crops_with_landmarks(tmp_path):
    image, lms = face_crop()
    write_shard(
        tmp_path / "a.tar", [(record("ffpp-fake_s00000_0", 1, whole_crop_box(), lms), image)]
    )
    with pytest.raises(InputError, match="no real crop"):
        write_sheet([tmp_path / "a.tar"], tmp_path / "sheet.png", margin=0.3)
    with pytest.raises(InputError, match="no such file"):
        write_sheet([tmp_path / "missing"], tmp_path / "sheet.png", margin=0.3)
