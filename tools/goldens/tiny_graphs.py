#!/usr/bin/env python3
"""Tiny ONNX graphs with the input/output variants real Stable Diffusion exports use, for contract tests.

    /usr/bin/python3 tools/goldens/tiny_graphs.py

Writes into <module>/src/test/resources/tiny/<case>/<component>/model.onnx (a few hundred bytes each):
  denoiser-svc  unet-int64-timestep  sample f32 [B,4,h,w], timestep int64 [B] (optimum 1.6-1.23, old diffusers
                                     script), encoder_hidden_states f32 [B,77,8] -> out_sample = sample * t
  denoiser-svc  unet-fp16            the same in float16 with a float16 scalar timestep (fp16 exports)
  denoiser-svc  unet-scalar-timestep  float32 with a rank-0 float timestep (optimum >= 1.24): rows of one call
                                     share a timestep, so only rows at the same timestep batch
  denoiser-svc  unet-no-timestep     its time input is named "t": must be refused with a message
  denoiser-svc  unet-inpaint         an inpainting UNet: sample f32 [B,9,h,w] (latents, mask, masked-image latents)
                                     -> out_sample = latents * t + mask + 10 * masked (any context width; also in
                                     orchestrator-embedded, where a test serves it with the demo model's others)
  text-encoder-svc text-int32        input_ids int32 [B,77] (old diffusers script) -> last_hidden_state
                                     f32 [B,77,1] = the ids as floats; no pooler_output
"""
import os

import onnx
from onnx import TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def save(module, case, component, graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tiny_graphs.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    d = f"{ROOT}/{module}/src/test/resources/tiny/{case}/{component}"
    os.makedirs(d, exist_ok=True)
    onnx.save(model, f"{d}/model.onnx")


def unet(case, elem, timestep_shape, time_name="timestep"):
    sample = helper.make_tensor_value_info("sample", elem, ["batch", 4, "height", "width"])
    t = helper.make_tensor_value_info(time_name, TensorProto.INT64 if elem == TensorProto.FLOAT and timestep_shape
                                      else elem, timestep_shape)
    ctx = helper.make_tensor_value_info("encoder_hidden_states", elem, ["batch", 77, 8])
    out = helper.make_tensor_value_info("out_sample", elem, ["batch", 4, "height", "width"])
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 1, 1])
    nodes = [helper.make_node("Cast", [time_name], ["tf"], to=elem),
             helper.make_node("Reshape", ["tf", "shape"], ["t4"]),
             helper.make_node("Mul", ["sample", "t4"], ["out_sample"])]
    # encoder_hidden_states is declared (the contract) but unused by this arithmetic
    save("denoiser-svc", case, "unet", helper.make_graph(nodes, case, [sample, t, ctx], [out], [shape]))


unet("unet-int64-timestep", TensorProto.FLOAT, ["batch"])
unet("unet-fp16", TensorProto.FLOAT16, [])
unet("unet-scalar-timestep", TensorProto.FLOAT, [])
unet("unet-no-timestep", TensorProto.FLOAT, ["batch"], time_name="t")

# an inpainting UNet: sample [B,9,h,w] = latents (4), mask (1), masked-image latents (4), float scalar timestep;
# out_sample = latents * t + mask + 10 * masked, so each input channel's place shows in the output
sample9 = helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch", 9, "height", "width"])
t9 = helper.make_tensor_value_info("timestep", TensorProto.FLOAT, [])
ctx9 = helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT, ["batch", 77, "width"])
out9 = helper.make_tensor_value_info("out_sample", TensorProto.FLOAT, ["batch", 4, "height", "width"])
consts = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
          [("c0", 0), ("c4", 4), ("c5", 5), ("c9", 9), ("axis1", 1)]] + [helper.make_tensor("ten", TensorProto.FLOAT,
                                                                                          [], [10.0])]
nodes = [helper.make_node("Slice", ["sample", "c0", "c4", "axis1"], ["lat"]),
         helper.make_node("Slice", ["sample", "c4", "c5", "axis1"], ["mask"]),
         helper.make_node("Slice", ["sample", "c5", "c9", "axis1"], ["masked"]),
         helper.make_node("Mul", ["lat", "timestep"], ["lt"]),
         helper.make_node("Mul", ["masked", "ten"], ["m10"]),
         helper.make_node("Add", ["lt", "mask"], ["ltm"]),
         helper.make_node("Add", ["ltm", "m10"], ["out_sample"])]
for module in ("denoiser-svc", "orchestrator-embedded"):  # (the latter runs it in the demo model's place)
    save(module, "unet-inpaint", "unet", helper.make_graph(nodes, "unet-inpaint", [sample9, t9, ctx9], [out9],
                                                           consts))

ids = helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", 77])
hidden = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", 77, 1])
axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
nodes = [helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["f", "axes"], ["last_hidden_state"])]
save("text-encoder-svc", "text-int32", "text_encoder", helper.make_graph(nodes, "text-int32", [ids], [hidden], [axes]))
print("written")
