"""The demo data's pictures: each category's silhouette and colour, the
classification images and the detection / segmentation scenes, drawn again
identically from the seed, the split and the image's index (each image has
a random generator of its own). :mod:`.data` writes them in the datasets'
layouts. Only numpy and Pillow."""
import zlib

import numpy as np
from PIL import Image, ImageDraw

DEMO_CLASSES = ('car', 'bus', 'clock', 'bottle')
DEMO_SEG_CLASSES = ('wall', ) + DEMO_CLASSES
# Probability that an object has its own category's colour.
COLOUR_CUE = 0.6

CLS_SIZE = 64
SCENE_SIZE = 128
# Longest side of an object, in pixels.
CLS_OBJECT_SIZE = (0.35 * CLS_SIZE, 0.8 * CLS_SIZE)
# A smaller object of another category stands behind the labelled one in
# this share of the classification images, as clutter.
CLS_DISTRACTOR_PROB = 0.5
CLS_DISTRACTOR_SIZE = (0.2 * CLS_SIZE, 0.35 * CLS_SIZE)
SCENE_OBJECT_SIZE = (28, 70)
# Largest share of a smaller box that another object may cover.
MAX_OVERLAP = 0.15

# Dominant colour and width / height of each category's silhouette.
_STYLES = {
    'car': dict(colour=(205, 40, 35), aspect=1.7),
    'bus': dict(colour=(240, 190, 25), aspect=0.78),
    'clock': dict(colour=(35, 75, 205), aspect=1.0),
    'bottle': dict(colour=(30, 160, 60), aspect=0.38),
}
_DARK = (25, 25, 30)
_GLASS = (195, 220, 240)


def image_rng(seed, name, index):
    """A generator of its own for image ``index`` of the split ``name``."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), index])


class _Pen:
    """Draw one object: its silhouette into a mask, its look into a layer.

    Args:
        size (int): Side of the (square) image.
    """

    def __init__(self, size):
        self.mask = Image.new('L', (size, size), 0)
        self.layer = Image.new('RGB', (size, size), 0)
        self._mask_draw = ImageDraw.Draw(self.mask)
        self._draw = ImageDraw.Draw(self.layer)

    def part(self, shape, xy, fill, **kwargs):
        """Draw a part of the silhouette (mask and colour).

        Args:
            shape (str): An ``ImageDraw`` method, e.g. ``'ellipse'``.
            xy (list): Its coordinates.
            fill (tuple): RGB colour.
            **kwargs: Other arguments of the ``ImageDraw`` method.
        """
        getattr(self._mask_draw, shape)(xy, fill=255, **kwargs)
        getattr(self._draw, shape)(xy, fill=fill, **kwargs)

    def detail(self, shape, xy, fill, **kwargs):
        """Draw a detail in colour only; the silhouette clips it.

        Args:
            shape (str): An ``ImageDraw`` method, e.g. ``'rectangle'``.
            xy (list): Its coordinates.
            fill (tuple): RGB colour.
            **kwargs: Other arguments of the ``ImageDraw`` method.
        """
        getattr(self._draw, shape)(xy, fill=fill, **kwargs)


def _rect(box, fx0, fy0, fx1, fy1):
    """Corners of a rectangle given in fractions of ``box`` (x, y, w, h)."""
    x, y, w, h = box
    return [x + fx0 * w, y + fy0 * h, x + fx1 * w, y + fy1 * h]


def _points(box, fractions):
    """Polygon vertices given in fractions of ``box`` (x, y, w, h)."""
    x, y, w, h = box
    return [(x + fx * w, y + fy * h) for fx, fy in fractions]


def _disc(box, fx, fy, radius):
    """Bounding box of a disc centred at a point given in fractions."""
    x, y, w, h = box
    cx, cy = x + fx * w, y + fy * h
    return [cx - radius, cy - radius, cx + radius, cy + radius]


def _draw_car(pen, box, colour, rng):
    """A wide body, a cabin with two windows and two wheels."""
    h = box[3]
    pen.part(
        'rounded_rectangle', _rect(box, 0, .38, 1, .8), colour, radius=.12 * h)
    pen.part('polygon',
             _points(box, [(.18, .42), (.3, .04), (.72, .04), (.86, .42)]),
             colour)
    pen.detail('polygon',
               _points(box, [(.27, .38), (.35, .12), (.48, .12), (.48, .38)]),
               _GLASS)
    pen.detail('polygon',
               _points(box, [(.53, .38), (.53, .12), (.68, .12), (.77, .38)]),
               _GLASS)
    for fx in (.24, .76):
        pen.part('ellipse', _disc(box, fx, .8, .2 * h), _DARK)
        pen.detail('ellipse', _disc(box, fx, .8, .08 * h), (150, 150, 150))


def _draw_bus(pen, box, colour, rng):
    """A tall box with a windscreen, rows of windows and two wheels."""
    w, h = box[2:]
    pen.part(
        'rounded_rectangle', _rect(box, 0, 0, 1, .9), colour, radius=.08 * w)
    for fx in (.25, .75):
        pen.part('ellipse', _disc(box, fx, .9, .1 * h), _DARK)
    pen.detail('rectangle', _rect(box, .1, .07, .9, .3), _GLASS)
    for fy in (.38, .58):
        for fx in (.1, .55):
            pen.detail('rectangle', _rect(box, fx, fy, fx + .35, fy + .14),
                       _GLASS)


def _draw_clock(pen, box, colour, rng):
    """A disc with a rim, a pale face and two hands at random angles."""
    x, y, w, h = box
    pen.part('ellipse', _rect(box, 0, 0, 1, 1), colour)
    pen.detail('ellipse', _rect(box, .13, .13, .87, .87), (240, 240, 228))
    cx, cy = x + w / 2, y + h / 2
    width = max(1, round(w / 14))
    for length, angle in zip((.34, .22), rng.uniform(0, 2 * np.pi, 2)):
        tip = (cx + length * w * np.cos(angle),
               cy + length * h * np.sin(angle))
        pen.detail('line', [(cx, cy), tip], _DARK, width=width)
    pen.detail('ellipse', _disc(box, .5, .5, width), _DARK)


def _draw_bottle(pen, box, colour, rng):
    """A narrow body, shoulders, a neck, a dark cap and a label."""
    w = box[2]
    pen.part(
        'rounded_rectangle', _rect(box, 0, .38, 1, 1), colour, radius=.25 * w)
    pen.part('polygon', _points(box, [(0, .45), (1, .45), (.7, .22),
                                      (.3, .22)]), colour)
    pen.part('rectangle', _rect(box, .3, .06, .7, .26), colour)
    pen.part('rectangle', _rect(box, .26, 0, .74, .09), (15, 85, 30))
    pen.detail('rectangle', _rect(box, 0, .62, 1, .76), (230, 225, 195))


_DRAWERS = {
    'car': _draw_car,
    'bus': _draw_bus,
    'clock': _draw_clock,
    'bottle': _draw_bottle,
}


def _background(rng, size):
    """A muted colour with a smooth random texture, as float32 (H, W, 3)."""
    base = rng.uniform(70, 190) + rng.uniform(-22, 22, 3)
    grid = rng.normal(0, 14, (5, 5, 3))
    pos = np.linspace(0, 4, size)
    interp = np.stack([np.interp(pos, np.arange(5), row) for row in np.eye(5)],
                      axis=1)
    texture = np.einsum('ik,klc,jl->ijc', interp, grid, interp)
    return (base + texture).astype(np.float32)


def _random_box(rng, label, img_size, size_range):
    """A box (x, y, w, h) of a category's shape inside the image."""
    longest = rng.uniform(*size_range)
    aspect = _STYLES[DEMO_CLASSES[label]]['aspect'] * rng.uniform(.9, 1.1)
    if aspect >= 1:
        w, h = longest, longest / aspect
    else:
        w, h = longest * aspect, longest
    x = rng.uniform(0, img_size - 1 - w)
    y = rng.uniform(0, img_size - 1 - h)
    return (x, y, w, h)


def _overlap(box_a, box_b):
    """Intersection of two boxes over the area of the smaller one."""
    iw = min(box_a[0] + box_a[2], box_b[0] + box_b[2]) - max(
        box_a[0], box_b[0])
    ih = min(box_a[1] + box_a[3], box_b[1] + box_b[3]) - max(
        box_a[1], box_b[1])
    smaller = min(box_a[2] * box_a[3], box_b[2] * box_b[3])
    return max(iw, 0) * max(ih, 0) / smaller


def _object_colour(rng, name):
    """The category's colour, or with ``1 - COLOUR_CUE`` another one's."""
    if rng.random() >= COLOUR_CUE:
        others = [c for c in DEMO_CLASSES if c != name]
        name = others[int(rng.integers(len(others)))]
    return _jitter(rng, _STYLES[name]['colour'])


def _jitter(rng, colour, amount=20):
    """A colour moved by up to ``amount`` per channel."""
    moved = np.asarray(colour) + rng.integers(-amount, amount + 1, 3)
    return tuple(int(c) for c in np.clip(moved, 0, 255))


def _render(rng, size, objects):
    """Draw objects, back to front, on a textured background.

    Args:
        rng (numpy.random.Generator): The image's random generator.
        size (int): Side of the square image.
        objects (list[tuple]): ``(label, box)`` pairs, ``label`` an index
            into :data:`DEMO_CLASSES` and ``box`` (x, y, w, h).

    Returns:
        dict: ``image`` (uint8 RGB with noise), ``clean`` (uint8 RGB before
        the noise), ``background`` (uint8 RGB without objects), ``labels``
        (list[int]) and ``masks`` (bool (H, W) arrays of the visible pixels
        of each object, disjoint).
    """
    background = np.round(_background(rng, size)).clip(0, 255).astype(np.uint8)
    canvas = Image.fromarray(background)
    masks = []
    for label, box in objects:
        name = DEMO_CLASSES[label]
        pen = _Pen(size)
        colour = _object_colour(rng, name)
        _DRAWERS[name](pen, box, colour, rng)
        canvas.paste(pen.layer, mask=pen.mask)
        masks.append(np.asarray(pen.mask) > 0)
    clean = np.asarray(canvas)
    noise = rng.normal(0, 6, clean.shape)
    image = np.round(clean + noise).clip(0, 255).astype(np.uint8)
    return dict(
        image=image,
        clean=clean,
        background=background,
        labels=[label for label, _ in objects],
        masks=_visible(masks))


def _visible(masks):
    """Remove from each mask the pixels that later objects cover."""
    covered = np.zeros_like(masks[0]) if masks else None
    visible = []
    for mask in reversed(masks):
        visible.append(mask & ~covered)
        covered = covered | mask
    return visible[::-1]


def _scene_objects(rng, index):
    """One to three objects with limited overlap; the first cycles classes."""
    num = int(rng.integers(1, 4))
    labels = [index % len(DEMO_CLASSES)]
    labels += [int(c) for c in rng.integers(0, len(DEMO_CLASSES), num - 1)]
    objects = []
    for label in labels:
        for _ in range(30):
            box = _random_box(rng, label, SCENE_SIZE, SCENE_OBJECT_SIZE)
            overlaps = [_overlap(box, other) for _, other in objects]
            if max(overlaps, default=0) <= MAX_OVERLAP:
                objects.append((label, box))
                break
    return objects


def demo_scene(seed, split, index):
    """Draw, again, image ``index`` of a detection or segmentation split.

    Args:
        seed (int): The seed given to :func:`make_demo_data`.
        split (str): ``'coco/train2017'``, ``'coco/val2017'``,
            ``'ade/training'`` or ``'ade/validation'``.
        index (int): 0-based position of the image in the split.

    Returns:
        dict: See :func:`_render`; ``image`` is what the JPEG encodes.
    """
    rng = image_rng(seed, split, index)
    return _render(rng, SCENE_SIZE, _scene_objects(rng, index))


def demo_object_image(seed, split, label, index):
    """Draw, again, a classification image: one object near the centre,
    sometimes with a smaller object of another category behind it.

    Args:
        seed (int): The seed given to :func:`make_demo_data`.
        split (str): ``'imagenet/train'`` or ``'imagenet/val'``.
        label (int): Index into :data:`DEMO_CLASSES`.
        index (int): Index of the image among those of its name.

    Returns:
        dict: See :func:`_render`.
    """
    rng = image_rng(seed, f'{split}/{DEMO_CLASSES[label]}', index)
    x, y, w, h = _random_box(rng, label, CLS_SIZE, CLS_OBJECT_SIZE)
    # Pull the object towards the centre: "centred-ish".
    x = .5 * x + .25 * (CLS_SIZE - 1 - w)
    y = .5 * y + .25 * (CLS_SIZE - 1 - h)
    objects = [(label, (x, y, w, h))]
    if rng.random() < CLS_DISTRACTOR_PROB:
        other = (label + 1 +
                 int(rng.integers(len(DEMO_CLASSES) - 1))) % len(DEMO_CLASSES)
        box = _random_box(rng, other, CLS_SIZE, CLS_DISTRACTOR_SIZE)
        objects.insert(0, (other, box))
    return _render(rng, CLS_SIZE, objects)
