"""The font corpus (issue 12): reserved packages refused, glyphs rendered, look-alikes and
fallback drawings left out, families split, the suite's episodes; all without apt or network."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fontTools")
pytest.importorskip("PIL")

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

from models import font_suite as suite
from models import fonts, glyph_augment


# -- reserved packages -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fonts-noto-core", "fonts-noto-cjk", "fonts-dejavu-core", "fonts-lohit-deva",
                                  "gsfonts", "fonts-sil-charis", "fonts-comic-neue", "fonts-gfs-didot",
                                  "fonts-texgyre-math", "fonts-unifont"])
def test_reserved_packages_are_refused(name: str) -> None:
    assert fonts.is_reserved(name)
    with pytest.raises(ValueError, match="reserved for evaluation"):
        fonts.check_allowed([name], depends={})


def test_a_package_that_pulls_in_a_reserved_one_is_refused() -> None:
    depends = {"fonts-indic": ["fonts-beng", "fonts-pagul"], "fonts-beng": ["fonts-lohit-beng-bengali"],
               "fonts-pagul": [], "fonts-lato": ["dpkg"]}
    with pytest.raises(ValueError, match=r"fonts-indic .depends on reserved fonts-lohit-beng-bengali"):
        fonts.check_allowed(["fonts-lato", "fonts-indic"], depends=depends)
    fonts.check_allowed(["fonts-lato", "fonts-pagul"], depends=depends)


def test_the_corpus_names_no_reserved_package() -> None:
    assert not [p for p in fonts.PACKAGES if fonts.is_reserved(p)]
    fonts.check_allowed(list(fonts.PACKAGES), depends={})


def test_the_command_refuses_reserved_packages_before_downloading(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "package_depends", lambda names: {})
    monkeypatch.setattr(fonts, "fetch", lambda *a: pytest.fail("fetched a reserved package"))
    with pytest.raises(SystemExit, match="fonts-noto-core"):
        fonts.main(["--cache", str(tmp_path), "--packages", "fonts-lato", "fonts-noto-core"])
    assert not list(tmp_path.iterdir())


# -- rendering -------------------------------------------------------------------------------
def _box(pen: TTGlyphPen, x0: int, y0: int, x1: int, y1: int) -> None:
    pen.moveTo((x0, y0))
    pen.lineTo((x0, y1))
    pen.lineTo((x1, y1))
    pen.lineTo((x1, y0))
    pen.closePath()


def make_font(path: Path, family: str, shapes: dict[int, list[tuple[int, int, int, int]]],
              shared: dict[int, str] | None = None) -> None:
    """A TrueType font whose glyph for each code point is the union of boxes; ``shared`` maps
    more code points onto the glyph of another (look-alikes, a fallback drawing)."""
    names = [".notdef"] + [f"g{cp:04X}" for cp in shapes]
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(names)
    cmap = {cp: f"g{cp:04X}" for cp in shapes}
    cmap.update(shared or {})
    fb.setupCharacterMap(cmap)
    glyphs = {}
    empty = TTGlyphPen(None)
    _box(empty, 100, 0, 500, 700)
    glyphs[".notdef"] = empty.glyph()
    for cp, boxes in shapes.items():
        pen = TTGlyphPen(None)
        for b in boxes:
            _box(pen, *b)
        glyphs[f"g{cp:04X}"] = pen.glyph()
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({n: (800, 50) for n in names})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": family, "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    fb.setupPost()
    fb.save(str(path))


A, B, DOTTED = 0x41, 0x42, 0x43  # Latin A, B, C
ALPHA = 0x391  # Greek Alpha: drawn exactly as A
FALLBACK = [0x44, 0x45, 0x46, 0x47, 0x48]  # D..H: one drawing for five characters


def font_package(tmp_path: Path, name: str, family: str, offset: int = 0) -> Path:
    folder = tmp_path / name / "usr/share/fonts/truetype" / name
    folder.mkdir(parents=True)
    shapes = {
        A: [(100 + offset, 0, 200 + offset, 700), (100, 600, 600, 700)],
        B: [(100, 0, 600, 100 + offset), (100, 0, 200, 700)],
        DOTTED: [(300, 0, 400, 400), (300, 550, 400, 650)],  # a stem and a separate dot
        FALLBACK[0]: [(50, 50, 700, 700)],
    }
    shared = {ALPHA: f"g{A:04X}", **{cp: f"g{FALLBACK[0]:04X}" for cp in FALLBACK[1:]}}
    make_font(folder / f"{family}.ttf", family, shapes, shared)
    return tmp_path / name


def test_rendering_keeps_separate_marks_and_drops_look_alikes_and_fallbacks(tmp_path: Path) -> None:
    folders = {f"fonts-test{i}": font_package(tmp_path, f"fonts-test{i}", f"Family{i}", 20 * i) for i in range(4)}
    corpus = fonts.build_from_folders(folders)
    names = set(corpus.characters)
    assert {"latin/U+0041", "latin/U+0042", "latin/U+0043"} <= names
    assert "greek/U+0391" not in names  # drawn exactly as A
    assert not any(f"U+{cp:04X}" in n for n in names for cp in FALLBACK)  # one drawing for five characters
    assert corpus.images.dtype == np.uint8 and corpus.images.shape[1:] == (105, 105)
    assert len(corpus.families) == 4 and sorted(set(corpus.family_split)) == ["train", "validation"]
    # the dot of C stays apart from its stem: two pieces of ink
    import cv2

    row = int(np.flatnonzero(corpus.label == corpus.characters.index("latin/U+0043"))[0])
    count, _ = cv2.connectedComponents((corpus.images[row] < 128).astype(np.uint8))
    assert count - 1 == 2


def test_validation_families_are_never_training_families() -> None:
    families = {"latin": {f"p/F{i}" for i in range(8)}, "greek": {"p/F1", "p/F2", "p/G"}, "hebrew": {"p/H"}}
    split = fonts.split_families(families)
    val = {f for f, s in split.items() if s == "validation"}
    assert len(val & families["latin"]) >= 2 and val & families["greek"]
    assert split["p/H"] == "train"  # one family: nothing to hold out
    assert fonts.split_families(dict(reversed(list(families.items())))) == split  # no order dependence


def test_corpus_round_trips(tmp_path: Path) -> None:
    folders = {"fonts-test0": font_package(tmp_path, "fonts-test0", "Family0")}
    corpus = fonts.build_from_folders(folders)
    fonts.save(corpus, tmp_path / "c.npz")
    again = fonts.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(again.images, corpus.images)
    assert again.characters == corpus.characters and again.family_split == corpus.family_split


# -- augmentation ----------------------------------------------------------------------------
def test_augmentations_are_fixed_by_their_seed_and_keep_the_image_shape() -> None:
    img = np.full((105, 105), 255, np.uint8)
    img[20:85, 45:60] = 0
    for fn in (glyph_augment.scan, glyph_augment.handwriting, glyph_augment.weight):
        a, b = fn(img, np.random.default_rng(5)), fn(img, np.random.default_rng(5))
        assert a.shape == img.shape and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        assert (a < 128).sum() > 50  # still a glyph


# -- the suite's episodes --------------------------------------------------------------------
def test_suite_episodes_measure_accuracy_and_both_sides_of_the_threshold() -> None:
    rng = np.random.default_rng(0)
    chars, fams = 30, 4
    centres = rng.normal(0, 10, (chars, 16)).astype(np.float32)
    emb, char, family = [], [], []
    for c in range(chars):
        for f in range(fams):
            emb.append(centres[c] + rng.normal(0, 0.3, (suite.VARIANTS, 16)))
            char.append(c)
            family.append(f)
    pool = suite.Pool(np.array(emb, np.float32), np.array(char), np.array(family),
                      np.array(["latin"] * len(char)), np.array([f == 3 for f in family]))
    results = suite.evaluate(pool, episodes=20)
    assert results["printed/20w1s"]["accuracy"][0] == 1.0
    assert "printed/5w5s" not in results  # three print families: five support typefaces cannot be found
    assert results["scanned/5w5s"]["kept"][0] > 0.9 and results["scanned/5w5s"]["rejected"][0] > 0.9
    assert results["handwriting typefaces/5w1s"]["accuracy"][0] == 1.0


def test_suite_trials_give_the_apps_open_set_reference_and_an_ece_per_cell() -> None:
    from models.calibration import font_suite_figures
    from protoglyph.core.classifier import Calibration, FewShotClassifier
    from protoglyph.core.threshold import ThresholdRule

    rng = np.random.default_rng(1)
    chars, fams = 30, 4
    centres = rng.normal(0, 10, (chars, 16)).astype(np.float32)
    emb = [centres[c] + rng.normal(0, 0.3, (suite.VARIANTS, 16)) for c in range(chars) for _ in range(fams)]
    char = [c for c in range(chars) for _ in range(fams)]
    family = [f for _ in range(chars) for f in range(fams)]
    pool = suite.Pool(np.array(emb, np.float32), np.array(char), np.array(family),
                      np.array(["latin"] * len(char)), np.array([f == 3 for f in family]))
    rule = ThresholdRule(2.0, keep_factor=3.0, spread_floor=0.5, effective_shots=True)
    calibration = Calibration(1.0, typical_spread=2.0, keep_factor=3.0, spread_floor=0.5, effective_shots=True)
    # the reference a trial rebuilds is the one the app's classifier holds for that support set
    examples = [pool.embeddings[i * fams, 1:6] for i in range(5)]
    app = FewShotClassifier(16, calibration=calibration)
    for j, e in enumerate(examples):
        app.add_examples(j, e)
    plain = FewShotClassifier(16)
    for j, e in enumerate(examples):
        plain.add_examples(j, e)
    queries = pool.embeddings[[i * fams + 1 for i in range(10)], 1]
    trial = suite.trial_of(plain, examples, queries, np.array([0, 1, 2, 3, 4, -1, -1, -1, -1, -1]))
    ours, theirs = trial.reference(rule), app.open_set_reference()
    assert theirs is not None and ours.threshold == pytest.approx(theirs.threshold, rel=1e-5)
    assert ours.mean_inverse_shots == theirs.mean_inverse_shots
    assert ours.density == pytest.approx(theirs.density, rel=1e-5)
    trials = suite.collect(pool, 10)
    figures = font_suite_figures(trials, calibration, 1.0)
    assert set(figures) == set(trials)
    for key, f in figures.items():
        assert 0.0 <= f["ece"] <= 1.0
        assert sum(b["count"] for b in f["reliability"]) == sum(len(t.truth) for t in trials[key][0])
    # --fit-fonts: one fitting task per domain, each holding all its cells' episodes under the rule
    from models.calibration import fit, font_tasks

    tasks = font_tasks(trials, rule)
    domains = {key.split("/")[0] for key in trials}
    assert len(tasks) == len(domains) and sum(map(len, tasks)) == sum(len(r) for r, _ in trials.values())
    assert all(e.reference.threshold == pytest.approx(rule.threshold(t.scatter, t.counts))
               for e, t in zip(tasks[0], trials[next(iter(trials))][0], strict=False))
    fitted = fit(tasks)
    assert fitted.open_set is not None and math.isfinite(fitted.temperature)


# -- training on fonts -----------------------------------------------------------------------
def many_character_package(tmp_path: Path, i: int, characters: int = 10) -> Path:
    """A package whose font draws ``characters`` letters as distinct patterns of boxes, shifted a
    little per family."""
    folder = tmp_path / f"fonts-many{i}" / "usr/share/fonts/truetype"
    folder.mkdir(parents=True)
    shapes = {}
    for c in range(characters):
        bits = [(c >> b) & 1 for b in range(4)]
        boxes = [(100 + 10 * i, 0, 200 + 10 * i, 700)]
        boxes += [(100, 100 + 150 * b, 600, 180 + 150 * b) for b in range(4) if bits[b]]
        if c >= 8:
            boxes.append((450, 600, 550, 700))
        shapes[0x41 + c] = boxes
    make_font(folder / f"Many{i}.ttf", f"Many{i}", shapes)
    return tmp_path / f"fonts-many{i}"


def test_training_mixes_font_episodes(tmp_path: Path, synthetic_omniglot: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="training tests need the 'train' extra (torch)")
    from models import data, train

    folders = {f"fonts-many{i}": many_character_package(tmp_path, i) for i in range(8)}
    corpus = fonts.build_from_folders(folders)
    assert "validation" in corpus.family_split and "train" in corpus.family_split
    fonts.save(corpus, tmp_path / "corpus.npz")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    glyphs = data.load_fonts(tmp_path / "corpus.npz")
    train_families = {f for f, s in enumerate(corpus.family_split) if s == "train"}
    assert set(glyphs.drawer.tolist()) <= train_families  # no validation typeface is trained on
    assert len(glyphs.label) == len(corpus.rows("train")) * (1 + data.FONT_VARIANTS)
    run = tmp_path / "run"
    train.main(["--data", str(synthetic_omniglot), "--out", str(run), "--episodes", "10", "--ways", "8",
                "--queries", "3", "--val-every", "10", "--width", "16", "--threads", "1",
                "--fonts", str(tmp_path / "corpus.npz"), "--font-share", "0.5"])
    import torch

    state = torch.load(run / "last.pt", weights_only=False)
    assert state["episode"] == 10 and state["config"]["fonts"]["characters"] == 10
    # the kept checkpoint was chosen on the validation families too
    assert 0.0 <= state["val"]["fonts_20w1s"] <= 1.0


def test_font_validation_episodes_cross_typefaces() -> None:
    from models.data import GlyphSet
    from models.train import font_episodes

    # 6 characters of one script in 3 families, 2 items each
    label = np.repeat(np.arange(6), 6)
    drawer = np.tile(np.repeat(np.arange(3), 2), 6)
    names = [f"font:latin/U+{0x41 + c:04X}" for c in range(6)]
    glyphs = GlyphSet(np.zeros((36, 4, 4), np.float16), label, drawer, names)
    episodes = font_episodes(glyphs, 20, 30, seed=0, queries=4)
    assert len(episodes) == 30
    for support, query in episodes:
        assert len(support) == 6 and len(query) == 24  # the ways shrink to what the script has
        for j, s in enumerate(support):
            q = query[4 * j : 4 * j + 4]
            assert (label[q] == label[s]).all() and (drawer[q] != drawer[s]).all()
