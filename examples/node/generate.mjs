// Generate an image with sdserve's public gRPC API from Node.js, printing progress as it streams.
//   npm ci && node generate.mjs "a red circle on a blue background" --seed 7 --out red-circle.png
// Options: --target HOST:PORT (default localhost:50050), --steps N, --seed N, --out FILE, --proto DIR (the folder
// holding sd/v1/diffusion.proto; default: this repository's proto/src/main/proto).
// The .proto files are loaded at run time (@grpc/proto-loader): no code generation step.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf("--" + name);
  return i >= 0 ? args.splice(i, 2)[1] : fallback;
};
const target = opt("target", "localhost:50050");
const steps = Number(opt("steps", "25"));
const seed = opt("seed", undefined);
const out = opt("out", "out.png");
const protoDir = opt("proto", path.join(here, "../../proto/src/main/proto"));
const prompt = args.join(" ");
if (!prompt) {
  console.error("usage: node generate.mjs PROMPT [--target HOST:PORT] [--steps N] [--seed N] [--out FILE]");
  process.exit(2);
}

// keepCase: the proto's field names (job_id, total_steps); longs as Numbers (seeds are below 2^53)
const definition = protoLoader.loadSync("sd/v1/diffusion.proto", { includeDirs: [protoDir], keepCase: true,
  longs: Number, enums: String, defaults: true, oneofs: true });
const { Diffusion } = grpc.loadPackageDefinition(definition).sd.v1;
const client = new Diffusion(target, grpc.credentials.createInsecure(),
  { "grpc.max_receive_message_length": 64 << 20 });

const request = { prompt, steps, ...(seed !== undefined ? { seed: Number(seed) } : {}) };
const deadline = new Date(Date.now() + 600_000);
const call = client.Generate(request, { deadline });
call.on("data", (e) => {
  switch (e.event) {
    case "accepted":
      console.log(`job ${e.accepted.job_id}, seed ${e.accepted.seeds[0]}`);
      break;
    case "queued":
      console.log(`waiting: ${e.queued.position} of ${e.queued.queue_depth}`);
      break;
    case "progress": {
      const p = e.progress;
      if (p.stage === "STAGE_DENOISING") {
        process.stdout.write(`\rdenoising ${p.step}/${p.total_steps}` +
          (p.estimated_remaining_ms > 0 ? `, ~${(p.estimated_remaining_ms / 1000).toFixed(1)} s left   ` : "   "));
      }
      break;
    }
    case "image":
      fs.writeFileSync(out, e.image.png);
      console.log(`\nwrote ${out} (${e.image.width}x${e.image.height}, seed ${e.image.seed})`);
      break;
    case "completed":
      console.log(`done in ${e.completed.total_ms} ms`);
      break;
  }
});
call.on("error", (err) => {
  console.error(`\n${grpc.status[err.code]}: ${err.details}`);
  process.exitCode = 1;
});
call.on("end", () => client.close());
