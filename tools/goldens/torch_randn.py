#!/usr/bin/env python3
"""Golden values of torch's seeded CPU normal noise, for the Java TorchGenerator tests.

    /usr/bin/python3 tools/goldens/torch_randn.py            # writes common/src/test/resources/torch-randn-goldens.json

Runs itself twice: once with torch's default CPU capability (ATEN_CPU_CAPABILITY=default: scalar glibc
logf/sinf/cosf kernel) and once with the AVX2 kernel (the default on x86 machines with AVX2). Debian's torch 1.13.
"""
import json
import os
import subprocess
import sys

CASES = [  # (seed, [shapes drawn one after another from the same generator])
    (0, [[1, 4, 8, 8]]),
    (42, [[1, 4, 8, 8], [1, 4, 8, 8]]),          # consecutive draws
    (1234, [[2, 3, 5]]),                          # 30 elements: not a multiple of 16
    (7, [[5], [3]]),                              # < 16 elements: the scalar double path, with its cache
    (2 ** 32 + 5, [[16]]),                        # a seed above 32 bits
    (0, [[1, 4, 64, 64]]),                        # SD's 512x512 latent
]


def draw():
    import torch
    out = []
    for seed, shapes in CASES:
        g = torch.Generator().manual_seed(seed)
        draws = []
        for shape in shapes:
            t = torch.randn(shape, generator=g, dtype=torch.float32).flatten()
            values = t.tolist() if t.numel() <= 256 else t[:64].tolist() + t[-64:].tolist()
            draws.append({"shape": shape, "values": values, "sum": float(t.double().sum()),
                          "head_and_tail_64": t.numel() > 256})
        out.append({"seed": seed, "draws": draws})
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(draw()))
        sys.exit(0)
    import torch
    result = {"torch": torch.__version__, "about": __doc__.strip().splitlines()[0]}
    for kernel, env in (("default", {"ATEN_CPU_CAPABILITY": "default"}), ("avx2", {"ATEN_CPU_CAPABILITY": "avx2"})):
        p = subprocess.run([sys.executable, __file__, "--child"], env={**os.environ, **env}, capture_output=True,
                           text=True, check=True)
        result[kernel] = json.loads(p.stdout)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = f"{root}/common/src/test/resources/torch-randn-goldens.json"
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", path)
