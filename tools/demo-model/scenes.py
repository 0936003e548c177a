"""Procedural scenes and captions for the demo model, and the prompt-adherence judge.

The rules here are specified in docs/prompt-adherence-judge.md; the Java test suite implements the same
rules (orchestrator-embedded/src/test/.../PromptJudge.java). Keep the three in step.
"""
import numpy as np

# Palette shared by the renderer and the judge (sRGB, 0..255). Colours are far apart so that a nearest-colour
# rule is unambiguous.
PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 50, 180),
    "orange": (245, 130, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
COLOURS = list(PALETTE)
SHAPES = ["circle", "square", "triangle", "cross"]
# Half extent of the shape as a fraction of the image side.
SIZES = {"small": 0.21, "large": 0.34}
JITTER = 0.06  # centre offset, fraction of the image side, uniform in [-JITTER, JITTER]
SUPERSAMPLE = 2


def inside(shape, u, v):
    """Membership of normalised coordinates (u, v) = ((x - cx) / r, (y - cy) / r), y pointing down."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    if shape == "triangle":  # apex up at v=-1, base at v=0.8 with half-width 1
        return (v >= -1.0) & (v <= 0.8) & (np.abs(u) <= (v + 1.0) / 1.8)
    if shape == "cross":
        return ((np.abs(u) <= 0.33) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.33) & (np.abs(u) <= 1.0))
    raise ValueError(shape)


# Each template's bounding box in normalised units: (u0, u1, v0, v1).
TEMPLATE_BOX = {
    "circle": (-1.0, 1.0, -1.0, 1.0),
    "square": (-0.85, 0.85, -0.85, 0.85),
    "triangle": (-1.0, 1.0, -1.0, 0.8),
    "cross": (-1.0, 1.0, -1.0, 1.0),
}


def render(scene, size):
    """scene: dict(shape, colour, background, size, cx, cy) with cx, cy in [0,1]. Returns uint8 [size,size,3]."""
    n = size * SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(coords, coords)
    r = SIZES[scene["size"]]
    mask = inside(scene["shape"], (x - scene["cx"]) / r, (y - scene["cy"]) / r).astype(np.float32)
    mask = mask.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))[..., None]
    fg = np.array(PALETTE[scene["colour"]], np.float32)
    bg = np.array(PALETTE[scene["background"]], np.float32)
    return np.round(mask * fg + (1 - mask) * bg).astype(np.uint8)


def caption(scene, with_size=True):
    size = f"{scene['size']} " if with_size else ""
    return f"a {size}{scene['colour']} {scene['shape']} on a {scene['background']} background"


def random_scene(rng):
    colour = COLOURS[rng.integers(len(COLOURS))]
    background = colour
    while background == colour:
        background = COLOURS[rng.integers(len(COLOURS))]
    return {
        "shape": SHAPES[rng.integers(len(SHAPES))],
        "colour": colour,
        "background": background,
        "size": list(SIZES)[rng.integers(len(SIZES))],
        "cx": 0.5 + rng.uniform(-JITTER, JITTER),
        "cy": 0.5 + rng.uniform(-JITTER, JITTER),
    }


def judge_prompts(count=64):
    """A fixed, balanced list of scenes for the adherence judge: every shape x every colour, backgrounds and
    sizes cycling. Deterministic, no RNG."""
    scenes = []
    i = 0
    while len(scenes) < count:
        shape = SHAPES[i % len(SHAPES)]
        colour = COLOURS[(i // len(SHAPES)) % len(COLOURS)]
        bg = COLOURS[(COLOURS.index(colour) + 1 + (i * 3) % (len(COLOURS) - 1)) % len(COLOURS)]
        size = list(SIZES)[(i // 2) % 2]
        scenes.append({"shape": shape, "colour": colour, "background": bg, "size": size})
        i += 1
    return scenes


# ---------------------------------------------------------------- judge (docs/prompt-adherence-judge.md)
def _nearest(img):
    pal = np.array([PALETTE[c] for c in COLOURS], np.float32)
    d = ((img[..., None, :].astype(np.float32) - pal) ** 2).sum(-1)
    return d.argmin(-1)


def judge(img):
    """img uint8 [H,W,3] -> dict(colour, background, shape, size) read from the pixels (None where absent)."""
    h, w, _ = img.shape
    cls = _nearest(img)
    border = np.concatenate([cls[:2].ravel(), cls[-2:].ravel(), cls[:, :2].ravel(), cls[:, -2:].ravel()])
    bg = np.bincount(border, minlength=len(COLOURS)).argmax()
    out = {"background": COLOURS[bg], "colour": None, "shape": None, "size": None}
    counts = np.bincount(cls.ravel(), minlength=len(COLOURS))
    counts[bg] = 0
    fg = counts.argmax()
    if counts[fg] < 0.01 * h * w:
        return out
    out["colour"] = COLOURS[fg]
    mask = cls == fg
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    out["size"] = "large" if max(x1 - x0, y1 - y0) > 0.55 * max(h, w) else "small"
    px, py = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    best, best_iou = None, -1.0
    for shape in SHAPES:
        u0, u1, v0, v1 = TEMPLATE_BOX[shape]
        u = u0 + (px - x0) / (x1 - x0) * (u1 - u0)
        v = v0 + (py - y0) / (y1 - y0) * (v1 - v0)
        t = inside(shape, u, v)
        iou = (t & mask).sum() / max(1, (t | mask).sum())
        if iou > best_iou:
            best, best_iou = shape, iou
    out["shape"] = best
    return out
