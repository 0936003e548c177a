#!/usr/bin/env python3
"""A quality gate over sdserve's Evaluate RPC: FID, KID, precision, recall and IS of the served model's own images,
failing (exit status 3) when FID is above --max-fid. For a deployment pipeline: after a new model version, replica
type or scheduler default, check that quality held.

    ./evaluate.sh --images 256 --steps 25 --scheduler ddim --max-fid 10 --target localhost:50050

evaluate.sh makes the message classes (with-protos.sh) and runs this with Debian's python3-grpcio. The server's VAE
stage needs a feature extractor (sd.vae.extractor-dir; the demo image has one).
"""
import argparse
import sys

import grpc

from sd.v1 import diffusion_pb2


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="localhost:50050")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--scheduler", default="ddim")
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--max-fid", type=float, help="fail (exit 3) when FID is above this")
    a = ap.parse_args()

    request = diffusion_pb2.EvaluateRequest(images=a.images, steps=a.steps, scheduler=a.scheduler,
                                            guidance_scale=a.guidance)
    with grpc.insecure_channel(a.target) as channel:
        evaluate = channel.unary_stream("/sd.v1.Diffusion/Evaluate",
                                        request_serializer=diffusion_pb2.EvaluateRequest.SerializeToString,
                                        response_deserializer=diffusion_pb2.EvaluateEvent.FromString)
        result = None
        try:
            for event in evaluate(request, timeout=3600):
                if event.WhichOneof("event") == "progress":
                    p = event.progress
                    state = "measuring" if p.measuring else f"~{p.estimated_remaining_ms / 1000:.0f} s left"
                    print(f"\r{p.images_done}/{p.images_total} images, {state}   ", end="", flush=True)
                else:
                    result = event.result
        except grpc.RpcError as e:
            print(f"\n{e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    print()
    r = result
    print(f"{r.resolved.images} images, {r.resolved.steps} steps of {r.resolved.scheduler}, guidance "
          f"{r.resolved.guidance_scale:g}, against {r.reference_images} real images ({r.extractor})")
    print(f"FID        {r.fid:10.4f}")
    print(f"KID        {r.kid:10.6f}")
    print(f"precision  {r.precision:10.4f}")
    print(f"recall     {r.recall:10.4f}")
    if r.HasField("inception_score"):
        print(f"IS         {r.inception_score:10.4f} +- {r.inception_score_std:.4f}")
    if a.max_fid is not None and r.fid > a.max_fid:
        print(f"quality gate failed: FID {r.fid:.4f} > {a.max_fid:g}", file=sys.stderr)
        return 3
    if a.max_fid is not None:
        print(f"quality gate passed: FID {r.fid:.4f} <= {a.max_fid:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
