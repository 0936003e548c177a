#!/usr/bin/env python3
"""Gives the committed demo UNet a `timestep [batch]` input in place of its rank-0 one (what export.py now writes).

    /usr/bin/python3 tools/demo-model/batch_timestep.py [models/sd-shapes-64/unet/model.onnx]

The graph reshapes `timestep` to [-1] before the sinusoidal embedding (nets.timestep_embedding), so a [B] input
gives one embedding per row and the weights stay as trained: only the declared input shape changes. That is
the layout of the diffusers conversion script and of optimum < 1.24, under which the denoiser can batch rows
of different jobs at different timesteps into one UNet call. Running it on a graph that already has [batch] is
a no-op.
"""
import sys

import onnx

path = sys.argv[1] if len(sys.argv) > 1 else "models/sd-shapes-64/unet/model.onnx"
model = onnx.load(path)
t = next(i for i in model.graph.input if i.name == "timestep")
dims = t.type.tensor_type.shape.dim
if len(dims) == 1:
    print(f"{path}: timestep is already [{dims[0].dim_param or dims[0].dim_value}]")
    sys.exit(0)
reshape = next(n for n in model.graph.node if n.op_type == "Reshape" and n.input[0] == "timestep")
dims.add().dim_param = "batch"
onnx.checker.check_model(model)
onnx.save(model, path)
print(f"{path}: timestep is now [batch] (it feeds {reshape.name}, a reshape to [-1])")
