"""The Omniglot reader on files made here (no data set needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.omniglot import DataNotFound, data_dir, list_drawings, read_strokes, render_strokes, zip_path


def test_read_strokes_splits_at_breaks_and_flips_y() -> None:
    text = "START\n10.0,-20.0,0\n11.0,-21.0,16\nBREAK\n50,-50,300\nBREAK\n"
    strokes = read_strokes(text)
    assert strokes == [[(10.0, 20.0, 0.0), (11.0, 21.0, 16.0)], [(50.0, 50.0, 300.0)]]


def test_render_strokes_draws_lines_and_single_points() -> None:
    canvas = render_strokes([[(10.0, 10.0, 0.0), (90.0, 90.0, 10.0)], [(20.0, 80.0, 20.0)]], size=420, pen=3)
    assert canvas.shape == (420, 420) and canvas.dtype == np.uint8
    assert canvas[200, 200] < 128  # on the diagonal
    assert canvas[320, 80] < 128  # the one-point stroke is a dot
    assert canvas[50, 350] == 255


def test_missing_folder_and_zip_name_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataNotFound, match="--data"):
        data_dir(tmp_path / "nowhere")
    monkeypatch.setenv("PROTOGLYPH_OMNIGLOT", str(tmp_path))
    assert data_dir() == tmp_path
    with pytest.raises(DataNotFound, match=r"images_background\.zip"):
        zip_path(tmp_path, "images_background")


def test_a_zip_without_drawings_is_refused(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "images_background.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "nothing here")
    with pytest.raises(DataNotFound, match="no Omniglot drawings"):
        list_drawings(path)


def test_synthetic_zip_in_the_official_layout(synthetic_omniglot: Path) -> None:
    drawings = list_drawings(synthetic_omniglot / "images_background.zip")
    assert len(drawings) == 22 * 20
    assert {d.alphabet for d in drawings} == {"Synthetic_A", "Synthetic_B", "Latin"}
    assert sorted({d.drawer for d in drawings}) == list(range(1, 21))
