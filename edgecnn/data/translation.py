"""Image-to-image translation data.

- ``pairs:DIR``: DIR/A and DIR/B hold images with the same file names; A/x.png translates to
  B/x.png (what Pix2Pix trains on). A name found on one side only is reported and left out.
- ``unpaired:DIR``: DIR/A and DIR/B are two domains, any names and counts (what CycleGAN
  trains on).
- ``builtin:shapes``: pairs of a colour-coded class map (A) and the picture (B): the
  labels-to-photo task of the Pix2Pix paper, on the project's own synthetic set.

With ``edges=True`` (recipe ``data.edges``, `edgecnn eval --edges`) A is made from B instead: the
Canny edges of each picture at the model's size (``edgecnn.runtime.edges.canny_edges``, what
the runtime Translator draws on a device), so any images become
edges -> photo pairs: builtin:shapes, pairs:DIR and unpaired:DIR (their B pictures), masks:DIR
(its images) and folder:DIR (every image under it, class folders or not).

Class labels per pair (``TranslationSet.labels``, what the FCN-score compares a judge's
segmentation of the generated pictures with) come from builtin:shapes' semantic masks,
masks:DIR's masks, or pairs:DIR/masks/NAME.png (pixel = class id) where present.

Images are resized (not letterboxed) to the model input, as Pix2Pix does: a generator that
sees padding would learn to paint it. Arrays are uint8 RGB; ``to_unit_range`` maps them to the
[-1, 1] of a tanh generator. Unreadable files are reported and skipped.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.data.detection import split_ids
from edgecnn.data.segmentation import masks_by_stem, read_class_mask
from edgecnn.data.specs import DataSpec, is_shapes, parse_spec
from edgecnn.runtime.edges import canny_edges
from edgecnn.runtime.images import resize
from edgecnn.errors import EdgeCNNError

log = logging.getLogger("edgecnn.data")

# colour of each shapes class in the builtin:shapes class maps (background black)
SHAPES_PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200]], np.uint8)


@dataclass
class TranslationSet:
    a: np.ndarray  # (N, H, W, C) uint8, domain A (the input)
    b: np.ndarray  # (M, H, W, C) uint8, domain B (the target); M == N and row i pairs with a[i] when paired
    names_a: list[str]
    names_b: list[str]
    paired: bool
    source: str
    labels: np.ndarray | None = None  # (N, H, W) uint8 class ids of the pairs' pictures, where known


def _layout_error(path: Path, paired: bool) -> EdgeCNNError:
    how = "A/NAME.png and B/NAME.png with the same names" if paired else "A/*.png and B/*.png (any names)"
    return EdgeCNNError(f"'{path}' needs an A/ and a B/ folder.", f"Lay it out as DIR/{how}.")


def _images_in(folder: Path) -> dict[str, Path]:
    from edgecnn.runtime.images import IMAGE_SUFFIXES

    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _read(path: Path, size) -> np.ndarray | None:
    from edgecnn.runtime.images import read_rgb8

    image = read_rgb8(path)
    if image is None:
        log.warning("skipping %s: not a readable image", path)
        return None
    height, width, channels = size
    image = resize(image, width, height)
    return image.mean(axis=2, keepdims=True).astype(np.uint8) if channels == 1 else image


def _read_labels(path: Path, size) -> np.ndarray:
    """A class-id mask resized (nearest) like its picture: pictures here are resized, not letterboxed."""
    import cv2

    mask = read_class_mask(path)
    if mask is None:
        raise EdgeCNNError(f"Label mask '{path}' is not a readable PNG.",
                           "Label masks are PNGs whose pixel values are class ids, named like their pictures.")
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def load_pairs(path: Path, size, split: str = "all", limit: int | None = None) -> TranslationSet:
    if not (path / "A").is_dir() or not (path / "B").is_dir():
        raise _layout_error(path, paired=True)
    side_a, side_b = _images_in(path / "A"), _images_in(path / "B")
    common = sorted(side_a.keys() & side_b.keys())
    for side, others, label in ((side_a, side_b, "A"), (side_b, side_a, "B")):
        alone = sorted(side.keys() - others.keys())
        if alone:
            log.warning("%d image(s) in %s/ have no partner of the same name and are left out: %s%s", len(alone),
                        label, ", ".join(alone[:5]), " ..." if len(alone) > 5 else "")
    if not common:
        raise EdgeCNNError(f"No file name appears in both '{path / 'A'}' and '{path / 'B'}'.",
                           "pairs: needs A/NAME and B/NAME for each pair; for two unrelated image sets "
                           "use unpaired:DIR.")
    a, b, names = [], [], []
    for name in split_ids(common, split)[: limit or None]:
        first, second = _read(side_a[name], size), _read(side_b[name], size)
        if first is not None and second is not None:
            a.append(first)
            b.append(second)
            names.append(name)
    if not names:
        raise EdgeCNNError(f"No readable image pairs under '{path}'.")
    labels = None
    if (path / "masks").is_dir():  # optional class-id masks of the B pictures, for the FCN-score
        masks = masks_by_stem(path / "masks")
        if all(Path(name).stem in masks for name in names):
            labels = np.stack([_read_labels(masks[Path(name).stem], size) for name in names])
        else:
            log.warning("%s/masks/ lacks a mask for some pictures: no class labels for the FCN-score", path)
    return TranslationSet(np.stack(a), np.stack(b), names, list(names), True, f"pairs:{path}", labels)


def load_unpaired(path: Path, size, split: str = "all", limit: int | None = None) -> TranslationSet:
    if not (path / "A").is_dir() or not (path / "B").is_dir():
        raise _layout_error(path, paired=False)
    domains = []
    for label in ("A", "B"):
        files = _images_in(path / label)
        chosen = split_ids(sorted(files), split)[: limit or None]
        images = [(name, image) for name in chosen if (image := _read(files[name], size)) is not None]
        if not images:
            raise EdgeCNNError(f"'{path / label}' has no readable images.", "unpaired: needs images in A/ and B/.")
        domains.append(images)
    (names_a, a), (names_b, b) = (zip(*domain) for domain in domains)
    return TranslationSet(np.stack(a), np.stack(b), list(names_a), list(names_b), False, f"unpaired:{path}")


def load_shapes_pairs(size, split: str = "val", limit: int | None = None, painted: bool = False) -> TranslationSet:
    """builtin:shapes (or painted_shapes) as labels -> photo pairs: A is the class map in
    ``SHAPES_PALETTE``."""
    import cv2

    from edgecnn.data.detection import SHAPES_SPLITS, SHAPES_SIZE
    from edgecnn.data.shapes import generate_sample

    split = "train" if split == "all" else split
    seed, count = SHAPES_SPLITS[split]
    count = min(count, limit) if limit else count
    rng = np.random.default_rng(seed)
    height, width, channels = size
    a, b, classes = [], [], []
    for _ in range(count):
        sample = generate_sample(rng, SHAPES_SIZE, painted=painted)
        semantic = cv2.resize(sample.semantic, (width, height), interpolation=cv2.INTER_NEAREST)
        labels = SHAPES_PALETTE[semantic]
        photo = resize(sample.image, width, height)
        if channels == 1:
            labels, photo = (x.mean(axis=2, keepdims=True).astype(np.uint8) for x in (labels, photo))
        a.append(labels)
        b.append(photo)
        classes.append(semantic)
    names = [f"shapes_{split}_{index:05d}.png" for index in range(count)]
    name = "painted_shapes" if painted else "shapes"
    return TranslationSet(np.stack(a), np.stack(b), names, list(names), True, f"builtin:{name} ({split})",
                          np.stack(classes))


def with_edges(data: TranslationSet) -> TranslationSet:
    """``data`` as edges -> photo pairs: A becomes the Canny edges of each B picture."""
    edges = np.stack([canny_edges(photo) for photo in data.b])
    return TranslationSet(edges, data.b, list(data.names_b), list(data.names_b), True, f"{data.source}, edges",
                          data.labels if data.paired else None)


def _image_folder(spec: DataSpec, size, split: str, limit: int | None) -> TranslationSet:
    """The pictures of folder:DIR (any depth) or masks:DIR (with their class masks), B side only."""
    from edgecnn.runtime.images import IMAGE_SUFFIXES

    root = Path(spec.location)
    folder = root / "images" if spec.kind == "masks" else root
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise EdgeCNNError(f"No images under '{folder}'.", "Put .png/.jpg pictures there.")
    chosen = split_ids(files, split)[: limit or None]
    masks = masks_by_stem(root / "masks") if spec.kind == "masks" else {}
    pictures, names, labels = [], [], []
    for file in chosen:
        picture = _read(file, size)
        if picture is None:
            continue
        pictures.append(picture)
        names.append(str(file.relative_to(folder)))
        if spec.kind == "masks":
            if file.stem not in masks:
                raise EdgeCNNError(f"'{file}' has no mask '{root / 'masks' / file.stem}.png'.",
                                   "masks:DIR needs DIR/masks/NAME.png per image.")
            labels.append(_read_labels(masks[file.stem], size))
    if not pictures:
        raise EdgeCNNError(f"No readable images under '{folder}'.")
    stack = np.stack(pictures)
    return TranslationSet(stack, stack, names, list(names), True, str(spec), np.stack(labels) if labels else None)


def load_translation_samples(spec: str | DataSpec, size, split: str = "val", limit: int | None = None,
                             edges: bool = False) -> TranslationSet:
    """Translation pairs (or two domains) from ``spec`` at the model's ``size``; with ``edges``
    the A side is the Canny edges of the B pictures (see the module notes)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if edges:
        if spec.kind in ("folder", "masks"):
            return with_edges(_image_folder(spec, size, split, limit))
        return with_edges(load_translation_samples(spec, size, split, limit))
    if spec.kind == "pairs":
        return load_pairs(Path(spec.location), size, split, limit)
    if spec.kind == "unpaired":
        return load_unpaired(Path(spec.location), size, split, limit)
    if is_shapes(spec):
        return load_shapes_pairs(size, split, limit, spec.location == "painted_shapes")
    raise EdgeCNNError(f"'{spec}' does not provide image pairs.",
                       "Translation data is pairs:DIR, unpaired:DIR (DIR/A + DIR/B) or builtin:shapes; any pictures "
                       "(folder:DIR, masks:DIR) become edges -> photo pairs with edges (recipe data.edges: true, "
                       "eval --edges).")


def write_pairs(data: TranslationSet, out: str | Path) -> Path:
    """``data`` as a pairs:DIR folder: OUT/A/NAME.png, OUT/B/NAME.png and, where the pairs have
    class labels, OUT/masks/NAME.png (pixel = class id). Each file is written atomically; a
    picture from a subfolder is named SUB__NAME.png."""
    import cv2

    from edgecnn.io_utils import atomic_write_bytes

    out = Path(out)
    # pictures from the subfolders of folder:DIR keep their folders in the name (sub/1.jpg ->
    # sub__1.png), so sub/1.jpg and 1.jpg do not write one file
    stems = ["__".join(Path(name).with_suffix("").parts) for name in data.names_a]
    clashes = sorted(stem for stem, count in Counter(stems).items() if count > 1)
    if clashes:
        raise EdgeCNNError(f"Several pictures would be written as {', '.join(clashes[:5])}.png (one name, different "
                           "file types or folders).", "Rename them so that each has a name of its own.")
    sides = {"A": data.a, "B": data.b, **({"masks": data.labels} if data.labels is not None else {})}
    for side, pictures in sides.items():
        for name, stem, picture in zip(data.names_a, stems, pictures):
            if picture.ndim == 3 and picture.shape[-1] == 3:
                picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
            ok, encoded = cv2.imencode(".png", picture)
            if not ok:
                raise EdgeCNNError(f"Could not encode {name} as PNG.")
            atomic_write_bytes(out / side / f"{stem}.png", encoded.tobytes())
    return out


def same_jitter(images: list[np.ndarray], rng: np.random.Generator, scale: float = 0.12,
                flip: bool = True) -> list[np.ndarray]:
    """Pix2Pix's random jitter, the same for every image given (both halves of a pair):
    upscale by up to 1 + ``scale``, crop a random window of the original size, mirror half of
    the time."""
    import cv2

    height, width = images[0].shape[:2]
    if scale:
        factor = 1 + rng.uniform(0, scale)
        big_h, big_w = int(round(height * factor)), int(round(width * factor))
        top, left = int(rng.integers(0, big_h - height + 1)), int(rng.integers(0, big_w - width + 1))
        images = [cv2.resize(image, (big_w, big_h), interpolation=cv2.INTER_NEAREST).reshape(big_h, big_w, -1)
                  [top: top + height, left: left + width] for image in images]
    if flip and rng.random() < 0.5:
        images = [image[:, ::-1] for image in images]
    return [np.ascontiguousarray(image) for image in images]


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (a tanh generator's range)."""
    return images.astype(np.float32) / 127.5 - 1.0


def from_unit_range(images: np.ndarray) -> np.ndarray:
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def translation_dataset(data: TranslationSet, batch_size: int, seed: int = 0, jitter: float = 0.12,
                        flip: bool = True):
    """A shuffled, jittered tf.data pipeline of (a, b) batches in [-1, 1], prefetched. Unpaired
    sets draw b independently of a each time (the domains need not have equal sizes)."""
    from edgecnn._keras import tf

    count = len(data.a)

    def generate():
        rng = np.random.default_rng([seed, generate.epoch])
        generate.epoch += 1
        for index in rng.permutation(count):
            if data.paired:
                a, b = same_jitter([data.a[index], data.b[index]], rng, jitter, flip)
            else:  # each domain jittered on its own, b drawn at random
                a, = same_jitter([data.a[index]], rng, jitter, flip)
                b, = same_jitter([data.b[int(rng.integers(0, len(data.b)))]], rng, jitter, flip)
            yield to_unit_range(a), to_unit_range(b)

    generate.epoch = 0
    spec_a = tf.TensorSpec(data.a.shape[1:], tf.float32)
    spec_b = tf.TensorSpec(data.b.shape[1:], tf.float32)
    steps = max(1, count // batch_size)
    return (tf.data.Dataset.from_generator(generate, output_signature=(spec_a, spec_b))
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
            .apply(tf.data.experimental.assert_cardinality(steps)))
