package org.sdserve.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.onnx.OnnxModel;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.denoise.core.DenoiseJob;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.denoise.core.Guidance;
import org.sdserve.denoise.core.StepListener;
import org.sdserve.denoise.scheduler.DdimScheduler;
import org.sdserve.denoise.scheduler.Scheduler;
import org.sdserve.orchestrator.core.EngineSettings;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.Limits;
import org.sdserve.orchestrator.core.RequestValidator;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.DiffusionService;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Stage;
import org.sdserve.text.core.TextEncoder;
import org.sdserve.vae.core.Vae;

/**
 * One model through every mode, same machine, same ONNX Runtime threads, same steps and scheduler (DDIM, guidance
 * 7.5, batch 1): the bare ONNX Runtime loop, the pipeline cores without gRPC, the embedded services (in-process
 * gRPC), the four services as processes on loopback; plus time to the first progress event, throughput with 1-8
 * concurrent clients and each process's resident memory. Prints a markdown section (bench/run.sh assembles
 * docs/benchmarks.md).
 */
public final class Bench {
    private static final String PROMPT = "a red circle on a blue background";
    private final Path model;
    private final int steps;
    private final int runs;

    /** Median milliseconds of a mode: per image, and per stage where the mode can tell. */
    record Timing(double total, double text, double denoise, double decode) {
    }

    private Bench(Path model, int steps, int runs) {
        this.model = model;
        this.steps = steps;
        this.runs = runs;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = Options.parse(args);
        Logger.getLogger("").setLevel(Level.WARNING);
        Bench b = new Bench(Path.of(a.get("model")), Integer.parseInt(a.getOrDefault("steps", "25")),
                Integer.parseInt(a.getOrDefault("runs", "10")));
        String section = b.run(a.getOrDefault("label", "model"), Path.of(a.getOrDefault("root", ".")),
                a.getOrDefault("torch", ""));
        System.out.println(section);
        if (a.containsKey("out")) {
            Files.writeString(Path.of(a.get("out")), section);
        }
        System.exit(0);
    }

    private static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(null);
        return s.get(s.size() / 2);
    }

    private static final int WARMUP = 5;
    /** Fresh service processes see one call per stage per job: give their JIT as much as a serving process has. */
    private static final int PROCESS_WARMUP = 40;

    private Timing measure(Supplier<double[]> once) {
        return measure(once, WARMUP);
    }

    private Timing measure(Supplier<double[]> once, int warmup) {
        for (int i = 0; i < warmup; i++) {
            once.get(); // JIT and ONNX Runtime warm-up
        }
        List<double[]> r = new ArrayList<>();
        for (int i = 0; i < runs; i++) {
            r.add(once.get());
        }
        return new Timing(median(r.stream().map(x -> x[0]).toList()), median(r.stream().map(x -> x[1]).toList()),
                median(r.stream().map(x -> x[2]).toList()), median(r.stream().map(x -> x[3]).toList()));
    }

    private static double ms(long since) {
        return (System.nanoTime() - since) / 1e6;
    }

    /** 1. The floor: the three graphs run directly with the same scheduler arithmetic; no PNG. */
    private Timing bare() throws Exception {
        ModelDirectory dir = ModelDirectory.open(model);
        var tokenizer = org.sdserve.text.core.ClipTokenizer.load(dir);
        float scaling = (float) dir.json("vae_decoder/config.json").get("scaling_factor").asDouble();
        var sched = org.sdserve.denoise.scheduler.SchedulerConfig.parse(dir.json("scheduler/scheduler_config.json"));
        try (OnnxModel te = OnnxModel.open(dir.component("text_encoder"), "text_encoder", ExecutionOptions.CPU);
             OnnxModel unet = OnnxModel.open(dir.component("unet"), "unet", ExecutionOptions.CPU);
             OnnxModel dec = OnnxModel.open(dir.component("vae_decoder"), "vae_decoder", ExecutionOptions.CPU)) {
            return measure(() -> {
                try {
                    long t0 = System.nanoTime();
                    long[] ids = new long[2 * 77];
                    System.arraycopy(tokenizer.encode("").ids(), 0, ids, 0, 77);
                    System.arraycopy(tokenizer.encode(PROMPT).ids(), 0, ids, 77, 77);
                    FloatTensor ctx;
                    try (OnnxTensor in = OnnxTensor.createTensor(te.env(), LongBuffer.wrap(ids), new long[] {2, 77});
                         OrtSession.Result r = te.run(Map.of("input_ids", in))) {
                        ctx = te.floatOutput(r, "last_hidden_state");
                    }
                    double text = ms(t0);
                    long t1 = System.nanoTime();
                    FloatTensor x = new NoiseSource(new long[] {1}).randn(new long[] {1, 4, 8, 8});
                    Scheduler s = new DdimScheduler(sched, steps, 0f);
                    for (int i = 0; i < steps; i++) {
                        FloatTensor eps;
                        try (OnnxTensor xs = unet.floatInput("sample", FloatTensor.concat(x, x));
                             OnnxTensor ts = unet.floatInput("timestep", new FloatTensor(new long[0],
                                     new float[] {(float) s.timestep(i)}));
                             OnnxTensor cs = unet.floatInput("encoder_hidden_states", ctx);
                             OrtSession.Result r = unet.run(Map.of("sample", xs, "timestep", ts,
                                     "encoder_hidden_states", cs))) {
                            eps = Guidance.apply(unet.floatOutput(r, "out_sample"), 7.5f);
                        }
                        x = s.step(eps, i, x, null).prevSample();
                    }
                    double denoise = ms(t1);
                    long t2 = System.nanoTime();
                    float[] z = x.data().clone();
                    for (int i = 0; i < z.length; i++) {
                        z[i] /= scaling;
                    }
                    try (OnnxTensor in = dec.floatInput("latent_sample", new FloatTensor(x.shape(), z));
                         OrtSession.Result r = dec.run(Map.of("latent_sample", in))) {
                        dec.floatOutput(r, "sample");
                    }
                    return new double[] {ms(t0), text, denoise, ms(t2)};
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
        }
    }

    /** 2. The pipeline cores in one process, no gRPC: tokenizer + text encoder, the denoise loop, VAE + PNG. */
    private Timing core() {
        ModelDirectory dir = ModelDirectory.open(model);
        try (TextEncoder te = TextEncoder.load(dir, ExecutionOptions.CPU);
             Denoiser den = Denoiser.load(dir, ExecutionOptions.CPU);
             Vae vae = Vae.load(dir, ExecutionOptions.CPU)) {
            StepListener quiet = new StepListener() {
                @Override
                public void onStep(int step, int total, double timestep, List<byte[]> previews) {
                }

                @Override
                public boolean cancelled() {
                    return false;
                }
            };
            return measure(() -> {
                long t0 = System.nanoTime();
                FloatTensor h = te.encode(List.of("", PROMPT), true).lastHiddenState();
                double text = ms(t0);
                long t1 = System.nanoTime();
                FloatTensor lat = den.denoise(new DenoiseJob(h.slice(1, 2), h.slice(0, 1), 64, 64, steps, 7.5f, "ddim",
                        new long[] {1}, 0, 0f, null, 0, 0), quiet);
                double denoise = ms(t1);
                long t2 = System.nanoTime();
                vae.decode(lat).get(0).toPng();
                return new double[] {ms(t0), text, denoise, ms(t2)};
            });
        }
    }

    /** Times one Generate call: total, the stages' own figures, and the time to the first denoising progress. */
    private double[] call(ManagedChannel ch, long seed) {
        long t0 = System.nanoTime();
        double firstProgress = -1;
        Map<String, Long> stage = Map.of();
        Iterator<GenerateEvent> it = DiffusionGrpc.newBlockingStub(ch).generate(GenerateRequest.newBuilder()
                .setPrompt(PROMPT).setSeed(seed).setSteps(steps).setScheduler("ddim").build());
        while (it.hasNext()) {
            GenerateEvent e = it.next();
            if (firstProgress < 0 && e.hasProgress() && e.getProgress().getStage() == Stage.STAGE_DENOISING) {
                firstProgress = ms(t0);
            }
            if (e.hasCompleted()) {
                stage = e.getCompleted().getStageMsMap();
            }
        }
        return new double[] {ms(t0), stage.getOrDefault("text_encoding", 0L), stage.getOrDefault("denoising", 0L),
            stage.getOrDefault("decoding", 0L), firstProgress};
    }

    private double firstProgress(ManagedChannel ch) {
        List<Double> xs = new ArrayList<>();
        for (int i = 0; i < runs; i++) {
            xs.add(call(ch, i)[4]);
        }
        return median(xs);
    }

    /** Images per second with {@code clients} concurrent callers, each making {@code each} calls. */
    private static double throughput(ManagedChannel ch, int clients, int each) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        long t0 = System.nanoTime();
        List<Future<?>> fs = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            int id = c;
            fs.add(pool.submit(() -> {
                for (int i = 0; i < each; i++) {
                    DiffusionGrpc.newBlockingStub(ch).generate(GenerateRequest.newBuilder().setPrompt(PROMPT)
                            .setSeed(id * 1000L + i).setSteps(25).build()).forEachRemaining(e -> { });
                }
            }));
        }
        for (Future<?> f : fs) {
            f.get();
        }
        pool.shutdown();
        return clients * each / ((System.nanoTime() - t0) / 1e9);
    }

    /** A process's resident memory in kB (-1 when it cannot be read). */
    static long rssKb(Process p) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(p.pid()), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (Exception e) {
            return -1;
        }
        return -1;
    }

    private long modelBytes(String... components) throws Exception {
        long n = 0;
        for (String c : components) {
            try (var files = Files.walk(model.resolve(c))) {
                n += files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
            }
        }
        return n;
    }

    String run(String label, Path root, String torchJson) throws Exception {
        StringBuilder md = new StringBuilder();
        Timing bare = bare();
        Timing core = core();
        Timing embedded;
        double firstEmbedded;
        try (EmbeddedStages stages = EmbeddedStages.start(ModelDirectory.open(model), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT)) {
            String name = "bench-" + UUID.randomUUID();
            try (JobEngine engine = new JobEngine(stages.clients(), new RequestValidator(Limits.DEFAULT, () -> 0L),
                    EngineSettings.DEFAULT.withSlots(8, EngineSettings.DEFAULT.queueDepth()));
                 ServiceHost host = ServiceHost.inProcess(name, 64 << 20, List.of(new DiffusionService(engine)))) {
                ManagedChannel ch = InProcessChannelBuilder.forName(name).maxInboundMessageSize(64 << 20).build();
                embedded = measure(() -> Arrays.copyOf(call(ch, 1), 4));
                firstEmbedded = firstProgress(ch);
                ch.shutdownNow();
            }
        }
        Timing processes;
        double firstProcesses;
        Map<Integer, Double> rate = new LinkedHashMap<>();
        Map<String, long[]> memory = new LinkedHashMap<>();
        try (LocalCluster cluster = LocalCluster.start(root, model, 1, root.resolve("target/bench-logs"),
                Map.of("SD_ORCHESTRATOR_MAX_CONCURRENT_JOBS", "16"))) {
            ManagedChannel ch = NettyChannelBuilder.forAddress("localhost", cluster.orchestrator().port())
                    .usePlaintext().maxInboundMessageSize(64 << 20).build();
            processes = measure(() -> Arrays.copyOf(call(ch, 1), 4), PROCESS_WARMUP);
            firstProcesses = firstProgress(ch);
            for (int clients : new int[] {1, 2, 4, 8}) {
                rate.put(clients, throughput(ch, clients, Math.max(2, 16 / clients)));
            }
            Map<String, String[]> parts = Map.of("text-encoder-svc", new String[] {"text_encoder", "tokenizer"},
                    "denoiser-svc", new String[] {"unet"}, "vae-svc", new String[] {"vae_decoder", "vae_encoder"},
                    "orchestrator", new String[0]);
            for (LocalCluster.Service s : cluster.services()) {
                memory.put(s.module(), new long[] {rssKb(s.process()), modelBytes(parts.get(s.module()))});
            }
            ch.shutdownNow();
        }
        // ---- report
        md.append(String.format(Locale.ROOT, "## %s%n%n", label));
        md.append(String.format(Locale.ROOT, "Model `%s`; %d DDIM steps, guidance 7.5, 64x64, batch 1; median of %d "
                + "runs after %d warm-up runs (%d for the fresh service processes).%n%n", model, steps, runs, WARMUP,
                PROCESS_WARMUP));
        md.append("| mode | per image ms | text ms | denoise ms | decode ms | / bare loop |\n|---|---|---|---|---|---|\n");
        row(md, "1 bare ONNX Runtime loop (no PNG)", bare, bare);
        row(md, "2 pipeline cores, one process", core, bare);
        row(md, "3 embedded services (in-process gRPC)", embedded, bare);
        row(md, "4 four processes on loopback", processes, bare);
        double torchMs = -1;
        if (!torchJson.isBlank() && Files.isRegularFile(Path.of(torchJson))) {
            var t = org.sdserve.common.model.ModelDirectory.mapper().readTree(Path.of(torchJson).toFile());
            torchMs = t.get("total_ms").asDouble();
            row(md, "5 PyTorch eager (" + t.get("torch").asText() + ", " + t.get("threads").asInt() + " threads)",
                    new Timing(torchMs, t.get("text_ms").asDouble(), t.get("denoise_ms").asDouble(),
                            t.get("decode_ms").asDouble()), bare);
        } else {
            md.append("| 5 PyTorch eager | not measured (no PyTorch weights for this model here) | | | | |\n");
        }
        double step = bare.denoise() / steps;
        md.append(String.format(Locale.ROOT, "%nTargets: four processes / bare loop = **%.3f**; ours / PyTorch = "
                        + "**%s**; one UNet step (bare, with guidance) = %.1f ms.%n", processes.total() / bare.total(),
                torchMs > 0 ? String.format(Locale.ROOT, "%.2f", processes.total() / torchMs) : "n/a", step));
        md.append(String.format(Locale.ROOT, "%nFirst denoising progress event after the request: embedded %.1f ms, "
                        + "processes %.1f ms; budget = text encoding + one UNet step + 10 ms = %.1f ms.%n",
                firstEmbedded, firstProcesses, bare.text() + step + 10));
        md.append("\nThroughput, four processes (one replica each), 25 steps:\n\n| clients | images/s |\n|---|---|\n");
        rate.forEach((c, r) -> md.append(String.format(Locale.ROOT, "| %d | %.2f |%n", c, r)));
        md.append("\nResident memory after the runs:\n\n| process | RSS MB | model files MB | budget 1.3 x model + 250 MB "
                + "|\n|---|---|---|---|\n");
        memory.forEach((m, v) -> md.append(String.format(Locale.ROOT, "| %s | %.0f | %.1f | %.0f |%n", m, v[0] / 1024.0,
                v[1] / 1e6, 1.3 * v[1] / 1e6 + 250)));
        return md.append('\n').toString();
    }

    private static void row(StringBuilder md, String mode, Timing t, Timing bare) {
        md.append(String.format(Locale.ROOT, "| %s | %.1f | %.1f | %.1f | %.1f | %.3f |%n", mode, t.total(), t.text(),
                t.denoise(), t.decode(), t.total() / bare.total()));
    }
}
