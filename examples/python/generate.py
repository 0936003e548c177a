#!/usr/bin/env python3
"""Generate an image with sdserve's public gRPC API from Python, printing progress as it streams.

    ./generate.sh "a red circle on a blue background" --seed 7 --out red-circle.png

generate.sh makes the message classes (diffusion_pb2, tensor_pb2) with protoc and runs this with Debian's
python3-grpcio and python3-protobuf. The call itself needs no generated stub: grpcio's channel.unary_stream on
the method's full name, with the messages' own (de)serializers.
"""
import argparse
import sys

import grpc

from sd.v1 import diffusion_pb2, tensor_pb2


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prompt", nargs="+")
    ap.add_argument("--target", default="localhost:50050")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", default="out.png")
    a = ap.parse_args()

    request = diffusion_pb2.GenerateRequest(prompt=" ".join(a.prompt), steps=a.steps)
    if a.seed is not None:
        request.seed = a.seed
    with grpc.insecure_channel(a.target, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        generate = channel.unary_stream("/sd.v1.Diffusion/Generate",
                                        request_serializer=diffusion_pb2.GenerateRequest.SerializeToString,
                                        response_deserializer=diffusion_pb2.GenerateEvent.FromString)
        try:
            for event in generate(request, timeout=600):
                kind = event.WhichOneof("event")
                if kind == "accepted":
                    print(f"job {event.accepted.job_id}, seed {event.accepted.seeds[0]}")
                elif kind == "queued":
                    print(f"waiting: {event.queued.position} of {event.queued.queue_depth}")
                elif kind == "progress" and event.progress.stage == tensor_pb2.STAGE_DENOISING:
                    p = event.progress
                    left = f", ~{p.estimated_remaining_ms / 1000:.1f} s left" if p.estimated_remaining_ms else ""
                    print(f"\rdenoising {p.step}/{p.total_steps}{left}   ", end="", flush=True)
                elif kind == "image":
                    with open(a.out, "wb") as f:
                        f.write(event.image.png)
                    print(f"\nwrote {a.out} ({event.image.width}x{event.image.height}, seed {event.image.seed})")
                elif kind == "completed":
                    print(f"done in {event.completed.total_ms} ms")
        except grpc.RpcError as e:
            print(f"\n{e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
