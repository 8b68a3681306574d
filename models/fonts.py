"""The font corpus: glyphs of many scripts rendered from Debian's font packages (issue 12).

    python -m models.fonts [--cache DIR] [--packages P ...] [--list] [--check]

Downloads each package of :data:`PACKAGES` with ``apt-get download`` (the package alone, never
its dependencies), unpacks it with ``dpkg-deb -x`` into ``<cache>/packages/<name>/`` and reads
fonts **only from there**, never from the system's font folders (which may hold reserved
fonts). Every glyph a font has of the characters chosen for its scripts is rendered into a
105x105 greyscale image (ink dark on white, as Omniglot's), at one size per font and on one
baseline, so that relative size and position survive; the corpus is cached as one ``.npz``
keyed by its inputs. Nothing of it is committed.

**Reserved for evaluation** (issue 12): the packages whose names start with one of
:data:`RESERVED_PREFIXES`, any package that depends on one (metapackages such as
``fonts-indic``), and every real handwriting data set. :func:`check_allowed` refuses them
before anything is downloaded; the corpus never contains them.

A class is one character (one code point of one script). Characters that look the same as an
earlier one in some font (Latin A, Greek Alpha and Cyrillic A; a font's fallback box) are
left out, so an episode never holds two classes that cannot be told apart. Typeface families
are split per script into training and validation families (:func:`split_families`): the
validation suite (``models/font_suite.py``) draws support and queries from families that
training never saw.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.omniglot import REPO_ROOT

#: Debian packages reserved for evaluation: never downloaded, rendered, read or chosen with.
RESERVED_PREFIXES = (
    "fonts-noto", "fonts-dejavu", "fonts-freefont", "fonts-liberation", "fonts-croscore",
    "fonts-urw-base35", "gsfonts", "fonts-texgyre", "fonts-gfs-", "fonts-bpg-", "fonts-hosny-amiri",
    "fonts-kacst", "fonts-lohit-", "fonts-samyak-", "fonts-sarai", "fonts-unifont",
    "fonts-sil-abyssinica", "fonts-sil-andika", "fonts-sil-charis", "fonts-sil-ezra",
    "fonts-sil-gentium", "fonts-sil-scheherazade", "fonts-dkg-handwriting", "fonts-breip",
    "fonts-femkeklaver", "fonts-rufscript", "fonts-humor-sans", "fonts-comic-neue",
)

#: Styles: how a typeface relates to what users bring (the suite reports them apart).
PRINT, HANDWRITING, PIXEL, SYMBOLS = "print", "handwriting", "pixel", "symbols"

#: The packages the corpus uses, with their style. Every one is checked by
#: :func:`check_allowed` at run time as well.
PACKAGES: dict[str, str] = {
    # Latin, Greek, Cyrillic: book, sans, mono, display
    "fonts-ebgaramond": PRINT, "fonts-linuxlibertine": PRINT, "fonts-crosextra-caladea": PRINT,
    "fonts-crosextra-carlito": PRINT, "fonts-lato": PRINT, "fonts-open-sans": PRINT,
    "fonts-roboto-unhinted": PRINT, "fonts-roboto-slab": PRINT, "fonts-cantarell": PRINT,
    "fonts-inconsolata": PRINT, "fonts-hack-ttf": PRINT, "fonts-firacode": PRINT,
    "fonts-jetbrains-mono": PRINT, "fonts-cmu": PRINT, "fonts-oldstandard": PRINT,
    "fonts-vollkorn": PRINT, "fonts-junicode": PRINT, "fonts-cardo": PRINT, "fonts-paratype": PRINT,
    "fonts-go": PRINT, "fonts-quattrocento": PRINT, "fonts-karla": PRINT, "fonts-cabin": PRINT,
    "fonts-comfortaa": PRINT, "fonts-b612": PRINT, "fonts-ocr-a": PRINT, "fonts-courier-prime": PRINT,
    "fonts-elstob": PRINT, "fonts-fanwood": PRINT, "fonts-goudybookletter": PRINT,
    "fonts-sil-doulos": PRINT, "fonts-sil-galatia": PRINT, "fonts-mph-2b-damase": PRINT,
    "fonts-adf-accanthis": PRINT, "fonts-adf-gillius": PRINT, "fonts-adf-verana": PRINT,
    "fonts-blankenburg": PRINT, "fonts-gotico-antiqua": PRINT, "fonts-oflb-euterpe": SYMBOLS,
    "fonts-bebas-neue": PRINT, "fonts-yanone-kaffeesatz": PRINT, "fonts-inter": PRINT,
    # handwriting-like
    "fonts-dancingscript": HANDWRITING, "fonts-kaushanscript": HANDWRITING, "fonts-kristi": HANDWRITING,
    "fonts-cabinsketch": HANDWRITING, "fonts-ecolier-court": HANDWRITING, "fonts-isabella": HANDWRITING,
    "fonts-tomsontalks": HANDWRITING, "fonts-sjfonts": HANDWRITING, "fonts-leckerli-one": HANDWRITING,
    "fonts-lobster": HANDWRITING, "fonts-tlwg-purisa-ttf": HANDWRITING, "fonts-smc-chilanka": HANDWRITING,
    "fonts-klee": HANDWRITING, "fonts-yusei-magic": HANDWRITING, "fonts-arphic-ukai": HANDWRITING,
    "fonts-nanum": PRINT, "fonts-nanum-extra": HANDWRITING, "fonts-aoyagi-soseki": HANDWRITING,
    # pixel
    "fonts-dotgothic16": PIXEL, "fonts-misaki": PIXEL, "fonts-sixtyfour": PIXEL,
    # Hebrew, Arabic, Ethiopic, Armenian, Georgian
    "culmus": PRINT, "fonts-arabeyes": PRINT, "fonts-farsiweb": PRINT, "fonts-sil-lateef": PRINT,
    "fonts-sil-harmattan": PRINT, "fonts-paktype": PRINT, "fonts-hosny-thabit": PRINT,
    "fonts-sil-alkalami": PRINT, "fonts-ukij-uyghur": PRINT, "fonts-senamirmir-washra": PRINT,
    # CJK
    "fonts-ipafont-gothic": PRINT, "fonts-ipafont-mincho": PRINT, "fonts-wqy-zenhei": PRINT,
    "fonts-wqy-microhei": PRINT, "fonts-arphic-uming": PRINT, "fonts-unfonts-core": PRINT,
    "fonts-baekmuk": PRINT, "fonts-vlgothic": PRINT, "fonts-mplus": PRINT, "fonts-sawarabi-gothic": PRINT,
    "fonts-sawarabi-mincho": PRINT,
    # Indic
    "fonts-gargi": PRINT, "fonts-nakula": PRINT, "fonts-sahadeva": PRINT, "fonts-kalapi": PRINT,
    "fonts-sil-annapurna": PRINT,
    "fonts-gujr-extra": PRINT, "fonts-guru-extra": PRINT, "fonts-orya-extra": PRINT,
    "fonts-telu-extra": PRINT, "fonts-taml-tscu": PRINT, "fonts-gubbi": PRINT, "fonts-navilu": PRINT,
    "fonts-smc-rachana": PRINT, "fonts-smc-meera": PRINT, "fonts-smc-manjari": PRINT,
    "fonts-yrsa-rasa": PRINT, "fonts-lklug-sinhala": PRINT, "fonts-meera-taml": PRINT,
    # Southeast Asian, Tibetan
    "fonts-tlwg-garuda-ttf": PRINT, "fonts-tlwg-kinnari-ttf": PRINT, "fonts-tlwg-loma-ttf": PRINT,
    "fonts-tlwg-norasi-ttf": PRINT, "fonts-tlwg-sawasdee-ttf": PRINT, "fonts-tlwg-typist-ttf": PRINT,
    "fonts-tlwg-umpush-ttf": PRINT, "fonts-tlwg-waree-ttf": PRINT, "fonts-khmeros": PRINT,
    "fonts-lao": PRINT, "fonts-sil-padauk": PRINT, "fonts-myanmar": PRINT, "fonts-sil-mondulkiri": PRINT,
    "fonts-tibetan-machine": PRINT, "fonts-ddc-uchen": PRINT, "fonts-monlam": PRINT,
    # historical scripts, other scripts, symbols and math
    "fonts-ancient-scripts": PRINT, "fonts-sil-sophia-nubian": PRINT, "fonts-sil-tagmukay": PRINT,
    "fonts-evertype-conakry": PRINT, "fonts-lg-aboriginal": PRINT, "fonts-sil-nuosusil": PRINT,
    "fonts-eeyek": PRINT, "fonts-stix": SYMBOLS, "fonts-oflb-asana-math": SYMBOLS,
    "fonts-opensymbol": SYMBOLS, "fonts-font-awesome": SYMBOLS, "fonts-lmodern": SYMBOLS,
    "fonts-mathjax": SYMBOLS, "fonts-katex": SYMBOLS, "fonts-dseg": SYMBOLS,
    "fonts-fork-awesome": SYMBOLS, "fonts-elusive-icons": SYMBOLS,
}

#: Scripts and the code points the corpus takes from each: ``(first, last)`` inclusive ranges.
#: Only letters, digits and symbols (categories L, N, S) are kept; combining marks alone are not
#: glyphs a person labels.
SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "latin": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x17F), (0x180, 0x24F)),
    "greek": ((0x391, 0x3C9), (0x3D0, 0x3FF)),
    "cyrillic": ((0x400, 0x45F), (0x460, 0x4FF)),
    "armenian": ((0x531, 0x556), (0x561, 0x587)),
    "hebrew": ((0x5D0, 0x5EA),),
    "arabic": ((0x620, 0x64A), (0x660, 0x669), (0x671, 0x6D3), (0x6F0, 0x6F9)),
    "nko": ((0x7C0, 0x7EA),),
    "devanagari": ((0x904, 0x939), (0x958, 0x961), (0x966, 0x96F)),
    "bengali": ((0x985, 0x9B9), (0x9E6, 0x9EF)),
    "gurmukhi": ((0xA05, 0xA39), (0xA66, 0xA6F)),
    "gujarati": ((0xA85, 0xAB9), (0xAE6, 0xAEF)),
    "oriya": ((0xB05, 0xB39), (0xB66, 0xB6F)),
    "tamil": ((0xB85, 0xBB9), (0xBE6, 0xBF2)),
    "telugu": ((0xC05, 0xC39), (0xC66, 0xC6F)),
    "kannada": ((0xC85, 0xCB9), (0xCE6, 0xCEF)),
    "malayalam": ((0xD05, 0xD3A), (0xD66, 0xD6F)),
    "sinhala": ((0xD85, 0xDC6),),
    "thai": ((0xE01, 0xE2E), (0xE50, 0xE59)),
    "lao": ((0xE81, 0xEAE), (0xED0, 0xED9)),
    "tibetan": ((0xF40, 0xF6C), (0xF20, 0xF29)),
    "myanmar": ((0x1000, 0x102A), (0x1040, 0x1049)),
    "georgian": ((0x10D0, 0x10FA),),
    "ethiopic": ((0x1200, 0x135A),),
    "syllabics": ((0x1401, 0x166C),),
    "runic": ((0x16A0, 0x16EA),),
    "khmer": ((0x1780, 0x17B3), (0x17E0, 0x17E9)),
    "tifinagh": ((0x2D30, 0x2D67),),
    "coptic": ((0x2C80, 0x2CE4),),
    "kana": ((0x3041, 0x3096), (0x30A1, 0x30FA)),
    "hangul": ((0x3131, 0x318E), (0xAC00, 0xD7A3)),
    "han": ((0x4E00, 0x9FFF),),
    "yi": ((0xA000, 0xA48C),),
    "meetei": ((0xABC0, 0xABE2),),
    "math": ((0x2200, 0x22FF), (0x2A00, 0x2AFF), (0x1D400, 0x1D4FF)),
    "arrows": ((0x2190, 0x21FF), (0x27F0, 0x27FF), (0x2900, 0x297F)),
    "symbols": ((0x2100, 0x214F), (0x20A0, 0x20C0), (0x2300, 0x23FF), (0x25A0, 0x25FF),
                (0x2600, 0x26FF), (0x2700, 0x27BF), (0xF000, 0xF2E0)),
    "historical": ((0x10000, 0x100FA), (0x10300, 0x1034A), (0x10380, 0x103C3), (0x10900, 0x1091B),
                   (0x12000, 0x1236E), (0x13000, 0x1342E)),
}
#: At most this many characters per script (evenly spaced over those enough fonts have): Han,
#: Hangul syllables and cuneiform would otherwise drown the rest.
MAX_PER_SCRIPT = 400
#: A character needs this many typefaces to enter the corpus (one more than a support font,
#: so that it can be a cross-typeface query); scripts with fewer use what there is.
MIN_FAMILIES = 2
#: Share of each script's families held out for validation (at least one when it has two).
VALIDATION_SHARE = 0.25
#: More characters than this drawn alike in one face are its fallback drawing (a box, a blank
#: or a question mark): those images are left out; fewer are look-alikes (Latin A, Greek Alpha,
#: Cyrillic A): all but the first code point leave the corpus.
FALLBACK_GROUP = 4
IMAGE_SIZE = 105
#: The font's ascent + descent take this many pixels of the 105: the em box, as a glyph crop.
EM_PIXELS = 84
CORPUS_VERSION = 1


@dataclass
class FontCorpus:
    """Rendered glyphs, one row per (face, character).

    Attributes:
        images: ``(N, 105, 105)`` ``uint8``, ink dark on white.
        label: ``(N,)`` ``int64`` index into ``characters``.
        family: ``(N,)`` ``int64`` index into ``families``.
        characters: per class, ``"<script>/U+XXXX"``.
        families: per family, ``"<package>/<family name>"``.
        family_style: per family, its style (:data:`PRINT`, ...).
        family_split: per family, ``"train"`` or ``"validation"``.
    """

    images: np.ndarray
    label: np.ndarray
    family: np.ndarray
    characters: list[str]
    families: list[str]
    family_style: list[str]
    family_split: list[str]

    def script_of(self, character_index: int) -> str:
        return self.characters[character_index].split("/")[0]

    def rows(self, split: str) -> np.ndarray:
        """Indices of the images whose family is in ``split``."""
        chosen = np.array([s == split for s in self.family_split])
        return np.flatnonzero(chosen[self.family])


def is_reserved(package: str) -> bool:
    """Whether a Debian package is reserved for evaluation by its name."""
    return package.startswith(RESERVED_PREFIXES)


def check_allowed(packages: Iterable[str], depends: dict[str, list[str]] | None = None) -> None:
    """Refuse any reserved package, or one that depends on a reserved package.

    Args:
        packages: Debian package names.
        depends: each package's dependencies; read with ``apt-cache depends`` when ``None``.
    Raises:
        ValueError: naming every refused package and why.
    """
    names = list(packages)
    refused = [f"{n} (reserved for evaluation)" for n in names if is_reserved(n)]
    allowed = [n for n in names if not is_reserved(n)]
    if depends is None:
        depends = package_depends(allowed)
        frontier = {d for n in allowed for d in depends.get(n, []) if d.startswith("fonts-") and not is_reserved(d)}
        for _ in range(3):  # metapackages of metapackages (fonts-indic -> fonts-beng -> fonts-lohit-beng-*)
            frontier -= set(depends)
            if not frontier:
                break
            depends.update(package_depends(sorted(frontier)))
            frontier = {d for n in frontier for d in depends.get(n, []) if d.startswith("fonts-")}
    for name in allowed:
        bad = sorted(reserved_dependencies(name, depends))
        if bad:
            refused.append(f"{name} (depends on reserved {', '.join(bad)})")
    if refused:
        raise ValueError("refused: " + "; ".join(refused))


def reserved_dependencies(name: str, depends: dict[str, list[str]], depth: int = 4) -> set[str]:
    """The reserved packages ``name`` depends on, directly or through other packages."""
    found: set[str] = set()
    seen = {name}
    frontier = [name]
    for _ in range(depth):
        nxt = []
        for n in frontier:
            for d in depends.get(n, []):
                if is_reserved(d):
                    found.add(d)
                elif d not in seen:
                    seen.add(d)
                    nxt.append(d)
        frontier = nxt
    return found


def package_depends(names: Sequence[str]) -> dict[str, list[str]]:
    """What each package depends on, pre-depends on or recommends (one ``apt-cache depends``;
    a package apt does not know has no entry)."""
    if not names:
        return {}
    try:
        out = subprocess.run(["apt-cache", "depends", *names], capture_output=True, text=True, timeout=600).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    deps: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line and not line[0].isspace():
            current = deps.setdefault(line.strip(), [])
            continue
        parts = line.strip().split(":", 1)
        if current is not None and len(parts) == 2 and parts[0].lstrip("|") in ("Depends", "Recommends", "PreDepends"):
            current.append(parts[1].strip().strip("<>"))
    return deps


def default_cache() -> Path:
    return Path(os.environ.get("PROTOGLYPH_FONT_CACHE") or REPO_ROOT / ".cache" / "fonts")


def fetch(packages: Sequence[str], cache: Path) -> dict[str, Path]:
    """Download and unpack each allowed package (once); its folder under ``cache/packages``.

    Packages that cannot be downloaded are reported and skipped.
    """
    check_allowed(packages)
    debs, root = cache / "debs", cache / "packages"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in packages:
        target = root / name
        if not (target / ".complete").is_file():
            with tempfile.TemporaryDirectory(dir=debs) as tmp:
                got = subprocess.run(["apt-get", "download", name], cwd=tmp, capture_output=True, text=True)
                files = list(Path(tmp).glob("*.deb"))
                if got.returncode != 0 or not files:
                    print(f"  skipped {name}: {got.stderr.strip().splitlines()[-1:] or 'no .deb'}", file=sys.stderr)
                    continue
                shutil.rmtree(target, ignore_errors=True)
                subprocess.run(["dpkg-deb", "-x", str(files[0]), str(target)], check=True)
                (target / ".complete").write_text(files[0].name + "\n")
        out[name] = target
    return out


def font_files(folder: Path) -> list[Path]:
    """The TrueType/OpenType files a package unpacked, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".ttf", ".otf", ".ttc") and p.is_file())


@dataclass
class Face:
    package: str
    path: Path
    index: int
    family: str
    style_name: str
    cmap: set[int]


def faces(package: str, folder: Path) -> list[Face]:
    """Every face of a package's font files, bold and italic ones too (typefaces a user meets);
    faces sharing a family name count as one family for the split."""
    from fontTools.ttLib import TTCollection, TTFont

    out = []
    for path in font_files(folder):
        try:
            fonts = TTCollection(str(path), lazy=True).fonts if path.suffix.lower() == ".ttc" else [
                TTFont(str(path), lazy=True)]
        except Exception as error:  # a damaged or unusual font file: skip it, say so
            print(f"  skipped {path.name}: {error}", file=sys.stderr)
            continue
        for index, font in enumerate(fonts):
            try:
                name = font["name"]
                family = str(name.getDebugName(16) or name.getDebugName(1) or path.stem)
                style = str(name.getDebugName(17) or name.getDebugName(2) or "Regular")
                cmap = set(font.getBestCmap() or {})
            except Exception as error:
                print(f"  skipped {path.name}#{index}: {error}", file=sys.stderr)
                continue
            out.append(Face(package, path, index, family, style, cmap))
    return out


def script_characters(script: str) -> list[int]:
    """The code points of a script's ranges that are letters, digits or symbols."""
    out = []
    for first, last in SCRIPTS[script]:
        for cp in range(first, last + 1):
            if unicodedata.category(chr(cp))[0] in "LNS" or (script == "symbols" and 0xF000 <= cp <= 0xF2E0):
                out.append(cp)
    return out


def render(face: Face, codepoints: Sequence[int]) -> dict[int, np.ndarray]:
    """``codepoint -> (105, 105) uint8`` images of the glyphs the face has (blank ones left out).

    One size per face (ascent + descent = :data:`EM_PIXELS`), one baseline, centred on the
    glyph's ink horizontally; a glyph too big for the image is scaled down alone.
    """
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(str(face.path), size=EM_PIXELS, index=face.index)
    except OSError:
        return {}
    ascent, descent = font.getmetrics()
    scale = EM_PIXELS / max(ascent + descent, 1)
    size = max(round(EM_PIXELS * scale), 8)
    font = ImageFont.truetype(str(face.path), size=size, index=face.index)
    ascent, descent = font.getmetrics()
    top = (IMAGE_SIZE - (ascent + descent)) // 2
    out = {}
    for cp in codepoints:
        if cp not in face.cmap:
            continue
        ch = chr(cp)
        try:
            left, upper, right, lower = font.getbbox(ch, anchor="ls")
        except (OSError, ValueError):
            continue
        if right <= left or lower <= upper:
            continue
        canvas = Image.new("L", (IMAGE_SIZE * 2, IMAGE_SIZE * 2), 255)
        x = IMAGE_SIZE - (left + right) / 2
        y = IMAGE_SIZE // 2 + top + ascent
        ImageDraw.Draw(canvas).text((x, y), ch, font=font, fill=0, anchor="ls")
        arr = np.asarray(canvas)
        ink = np.argwhere(arr < 128)
        if len(ink) < 4:
            continue
        y0, x0 = ink.min(0)
        y1, x1 = ink.max(0) + 1
        lo, hi = IMAGE_SIZE // 2, IMAGE_SIZE // 2 + IMAGE_SIZE
        if y0 >= lo and x0 >= lo and y1 <= hi and x1 <= hi:
            out[cp] = arr[lo:hi, lo:hi].copy()
        else:  # too big for the em box: fit this glyph alone
            crop = Image.fromarray(arr[y0:y1, x0:x1])
            f = (IMAGE_SIZE - 6) / max(crop.size)
            crop = crop.resize((max(1, round(crop.size[0] * f)), max(1, round(crop.size[1] * f))), Image.LANCZOS)
            img = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 255)
            img.paste(crop, ((IMAGE_SIZE - crop.size[0]) // 2, (IMAGE_SIZE - crop.size[1]) // 2))
            out[cp] = np.asarray(img).copy()
    return out


def split_families(families: dict[str, set[str]]) -> dict[str, str]:
    """``family -> "train" | "validation"``: per script, a fixed share of its families (chosen by
    a hash of the name: the same on every machine and run) is for validation only.

    Args:
        families: per script, the families that have its characters. A family that serves
            several scripts is validation if any script chose it, so that no validation
            typeface is ever trained on.
    """
    split: dict[str, str] = {}
    for script in sorted(families):
        names = sorted(families[script], key=lambda n: hashlib.sha1(n.encode()).hexdigest())
        if len(names) < 2:
            continue
        count = max(1, round(VALIDATION_SHARE * len(names)))
        for name in names[:count]:
            split[name] = "validation"
    return {name: split.get(name, "train") for script in families for name in families[script]}


def corpus_path(cache: Path, packages: Sequence[str]) -> Path:
    """Where the corpus of ``packages`` is cached: named by everything that shapes it."""
    key_text = json.dumps([CORPUS_VERSION, IMAGE_SIZE, EM_PIXELS, MAX_PER_SCRIPT, MIN_FAMILIES, VALIDATION_SHARE,
                           sorted(packages), {k: list(v) for k, v in SCRIPTS.items()}])
    return cache / f"corpus-{hashlib.sha1(key_text.encode()).hexdigest()[:16]}.npz"


def build(cache: Path, packages: Sequence[str] | None = None, progress: bool = True) -> FontCorpus:
    """The corpus of ``packages`` (default :data:`PACKAGES`), from the cache when it is there."""
    return build_with_path(cache, packages, progress)[0]


def build_with_path(cache: Path, packages: Sequence[str] | None = None,
                    progress: bool = True) -> tuple[FontCorpus, Path]:
    """:func:`build` and the cached file's path."""
    names = list(packages or PACKAGES)
    path = corpus_path(cache, names)
    if path.is_file():
        return load(path), path
    corpus = build_from_folders(fetch(names, cache), progress)
    save(corpus, path)
    return corpus, path


def build_from_folders(folders: dict[str, Path], progress: bool = False) -> FontCorpus:
    """The corpus of unpacked packages (``package -> folder``), rendered now (no cache)."""
    all_faces: list[Face] = []
    for name, folder in folders.items():
        all_faces.extend(faces(name, folder))
    # which families have each script's characters
    by_char: dict[int, set[str]] = defaultdict(set)
    family_of = {id(f): f"{f.package}/{f.family}" for f in all_faces}
    for f in all_faces:
        for cp in f.cmap:
            by_char[cp].add(family_of[id(f)])
    chosen: dict[str, list[int]] = {}
    script_families: dict[str, set[str]] = {}
    for script in SCRIPTS:
        cps = [cp for cp in script_characters(script) if len(by_char.get(cp, ())) >= MIN_FAMILIES]
        if len(cps) > MAX_PER_SCRIPT:
            cps = [cps[int(i)] for i in np.linspace(0, len(cps) - 1, MAX_PER_SCRIPT)]
        if cps:
            chosen[script] = cps
            script_families[script] = set().union(*(by_char[cp] for cp in cps))
    split = split_families(script_families)
    wanted = {cp: script for script, cps in chosen.items() for cp in cps}
    images, cps_of, fam_of = [], [], []
    families: list[str] = []
    family_index: dict[str, int] = {}
    homoglyph: set[int] = set()
    for n, f in enumerate(all_faces):
        if progress and (n % 25 == 0 or n + 1 == len(all_faces)):
            print(f"  rendering face {n + 1}/{len(all_faces)} ({f.package})", file=sys.stderr, flush=True)
        got = render(f, [cp for cp in wanted if cp in f.cmap])
        digests = {cp: hashlib.sha1(np.packbits(img < 128).tobytes()).digest() for cp, img in got.items()}
        shared: dict[bytes, list[int]] = defaultdict(list)
        for cp, digest in digests.items():
            shared[digest].append(cp)
        for group in shared.values():
            if len(group) > FALLBACK_GROUP:  # one drawing for many characters: the font's fallback
                for cp in group:
                    del got[cp]
            elif len(group) > 1:  # looks exactly like another character in this face
                homoglyph.update(sorted(group)[1:])
        name = family_of[id(f)]
        if name not in family_index:
            family_index[name] = len(families)
            families.append(name)
        for cp, img in got.items():
            images.append(img)
            cps_of.append(cp)
            fam_of.append(family_index[name])
    keep_cps = sorted(cp for cp in set(cps_of) if cp not in homoglyph)
    class_of = {cp: i for i, cp in enumerate(keep_cps)}
    rows = [i for i, cp in enumerate(cps_of) if cp in class_of]
    style = {name: PACKAGES.get(name.split("/")[0], PRINT) for name in families}
    return FontCorpus(
        np.stack([images[i] for i in rows]) if rows else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        np.array([class_of[cps_of[i]] for i in rows], np.int64),
        np.array([fam_of[i] for i in rows], np.int64),
        [f"{wanted[cp]}/U+{cp:04X}" for cp in keep_cps],
        families,
        [style[n] for n in families],
        [split.get(n, "train") for n in families],
    )


def save(corpus: FontCorpus, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    os.close(fd)
    np.savez_compressed(tmp, images=corpus.images, label=corpus.label, family=corpus.family,
                        characters=np.array(corpus.characters), families=np.array(corpus.families),
                        family_style=np.array(corpus.family_style), family_split=np.array(corpus.family_split))
    Path(tmp).replace(path)


def load(path: Path) -> FontCorpus:
    with np.load(path) as d:
        return FontCorpus(d["images"], d["label"], d["family"], [str(c) for c in d["characters"]],
                          [str(f) for f in d["families"]], [str(s) for s in d["family_style"]],
                          [str(s) for s in d["family_split"]])


def summary(corpus: FontCorpus) -> str:
    """Per script: characters, families (train / validation) and images."""
    lines = [f"{len(corpus.images):,} images, {len(corpus.characters):,} characters, {len(corpus.families)} families"]
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    fams: dict[str, set[int]] = defaultdict(set)
    for c in corpus.characters:
        per[c.split("/")[0]][0] += 1
    scripts = np.array([corpus.script_of(int(i)) for i in range(len(corpus.characters))])
    for s, fam in zip(scripts[corpus.label], corpus.family, strict=True):
        per[s][1] += 1
        fams[s].add(int(fam))
    for s in sorted(per):
        val = sum(corpus.family_split[f] == "validation" for f in fams[s])
        lines.append(f"  {s:<12} {per[s][0]:5d} characters  {len(fams[s]):3d} families ({val} validation)  "
                     f"{per[s][1]:7,d} images")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=default_cache(), help="download and corpus cache "
                   "(default: $PROTOGLYPH_FONT_CACHE or .cache/fonts)")
    p.add_argument("--packages", nargs="+", help="only these packages (default: all of PACKAGES)")
    p.add_argument("--list", action="store_true", help="print the packages and styles and stop")
    p.add_argument("--check", action="store_true", help="check that every package is allowed and stop")
    args = p.parse_args(argv)
    names = args.packages or list(PACKAGES)
    if args.list:
        for name in names:
            print(f"{name}\t{PACKAGES.get(name, '?')}")
        return
    try:
        check_allowed(names)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if args.check:
        print(f"{len(names)} packages, none reserved")
        return
    corpus = build(args.cache, names)
    print(summary(corpus))


if __name__ == "__main__":
    main()
