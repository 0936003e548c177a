"""Goldens for PilResample (common): Pillow's resize of float32 ("F") planes, bicubic and Lanczos, as clean-fid
resizes each channel before Inception. The input planes are a formula both sides evaluate in float64 and round to
float32, so only the resize is compared.

    /usr/bin/python3 tools/goldens/pil_resize.py > common/src/test/resources/pil-resize-goldens.json
"""
import json
import math

import numpy as np
from PIL import Image

CASES = [  # (width, height, out_width, out_height, filter)
    (97, 61, 41, 29, "bicubic"),    # down in both directions (antialiased: the kernel spans 2.4 pixels)
    (23, 17, 59, 43, "bicubic"),    # up in both
    (64, 64, 299, 299, "bicubic"),  # the demo's size to Inception's, as clean-fid does
    (80, 48, 80, 20, "bicubic"),    # vertical only
    (50, 30, 17, 30, "lanczos"),    # horizontal only
    (33, 45, 70, 21, "lanczos"),    # up one way, down the other
]


def plane(w, h):
    """Values in [0, 255] with edges and smooth parts: 127.5 + 127.5 sin(0.37 x + 0.11 y^1.3) cos(0.05 x y)."""
    v = np.empty((h, w), dtype=np.float64)
    for y in range(h):
        for x in range(w):
            v[y, x] = 127.5 + 127.5 * math.sin(0.37 * x + 0.11 * y ** 1.3) * math.cos(0.05 * x * y)
    return v.astype(np.float32)


FILTERS = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
out = {"pillow": Image.__version__, "cases": []}
for w, h, ow, oh, f in CASES:
    img = Image.fromarray(plane(w, h), mode="F").resize((ow, oh), resample=FILTERS[f])
    r = np.asarray(img, dtype=np.float32).reshape(-1)
    stride = max(1, r.size // 600)  # every stride-th value (all of the small ones), and the sum of all
    out["cases"].append({"width": w, "height": h, "out_width": ow, "out_height": oh, "filter": f,
                         "stride": stride, "sum": float(r.astype(np.float64).sum()),
                         "out": [float(x) for x in r[::stride]]})
print(json.dumps(out))
