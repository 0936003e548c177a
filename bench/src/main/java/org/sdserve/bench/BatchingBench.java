package org.sdserve.bench;

import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.orchestrator.core.EngineSettings;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.Limits;
import org.sdserve.orchestrator.core.RequestValidator;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.DiffusionService;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Step-level batching on and off, interleaved: two embedded stacks in one JVM (the same model, one denoiser
 * with the batcher, one without), and for each round, each client count, each request mix, both stacks one
 * after the other. Prints a markdown table of images/s and latency percentiles (medians over rounds).
 *   BatchingBench --model DIR [--rounds 3] [--calls 16] [--clients 1,2,4,8,16] [--out FILE]
 */
public final class BatchingBench {
    private static final String PROMPT = "a red circle on a blue background";
    private static final String[] SCHEDULERS = {"ddim", "euler_a", "dpmpp_2m", "unipc"};

    private record Result(double imagesPerSecond, double p50, double p95, double p99) {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = Options.parse(args);
        Path model = Path.of(a.getOrDefault("model", "models/sd-shapes-64"));
        int rounds = Integer.parseInt(a.getOrDefault("rounds", "3"));
        int calls = Integer.parseInt(a.getOrDefault("calls", "16"));
        int[] clientCounts = java.util.Arrays.stream(a.getOrDefault("clients", "1,2,4,8,16").split(","))
                .mapToInt(Integer::parseInt).toArray();
        Map<String, ManagedChannel> stacks = new LinkedHashMap<>();
        List<AutoCloseable> owned = new ArrayList<>();
        for (String mode : List.of("off", "on")) {
            EmbeddedStages stages = EmbeddedStages.start(ModelDirectory.open(model), ExecutionOptions.CPU,
                    TorchGenerator.Kernel.AVX2, mode.equals("on") ? BatchSettings.DEFAULT : BatchSettings.OFF,
                    64 << 20, StageClients.Timeouts.DEFAULT);
            owned.add(stages);
            String name = "batching-" + mode + "-" + UUID.randomUUID();
            JobEngine engine = new JobEngine(stages.clients(), new RequestValidator(Limits.DEFAULT, () -> 0L),
                    EngineSettings.DEFAULT.withSlots(16, EngineSettings.DEFAULT.queueDepth()));
            owned.add(engine);
            owned.add(ServiceHost.inProcess(name, 64 << 20, List.of(new DiffusionService(engine))));
            ManagedChannel ch = InProcessChannelBuilder.forName(name).maxInboundMessageSize(64 << 20).build();
            stacks.put(mode, ch);
            run(ch, 2, 4, false); // warm-up
        }
        Map<String, List<Result>> results = new LinkedHashMap<>();
        for (int r = 0; r < rounds; r++) {
            for (boolean mixed : new boolean[] {false, true}) {
                for (int clients : clientCounts) {
                    for (var e : stacks.entrySet()) {
                        String key = (mixed ? "mixed" : "uniform") + "|" + clients + "|" + e.getKey();
                        Result res = run(e.getValue(), clients, Math.max(calls / clients, 2), mixed);
                        results.computeIfAbsent(key, k -> new ArrayList<>()).add(res);
                        System.err.printf(Locale.ROOT, "round %d %s: %.2f images/s%n", r + 1, key,
                                res.imagesPerSecond());
                    }
                }
            }
        }
        StringBuilder md = new StringBuilder();
        md.append(String.format(Locale.ROOT, "Model `%s`, embedded stacks in one JVM, orchestrator running up to 16 "
                + "jobs; %d interleaved rounds (medians). Uniform: 25 DDIM steps, guidance 7.5, 64x64. Mixed: steps "
                + "10-50, schedulers %s, guidance on and off, by call index.%n%n", model, rounds,
                String.join("/", SCHEDULERS)));
        md.append("| requests | clients | batching | images/s | p50 ms | p95 ms | p99 ms | on / off |\n");
        md.append("|---|---|---|---|---|---|---|---|\n");
        for (boolean mixed : new boolean[] {false, true}) {
            for (int clients : clientCounts) {
                double off = 0;
                for (String mode : stacks.keySet()) {
                    List<Result> rs = results.get((mixed ? "mixed" : "uniform") + "|" + clients + "|" + mode);
                    double ips = Stats.median(rs.stream().map(Result::imagesPerSecond).toList());
                    if (mode.equals("off")) {
                        off = ips;
                    }
                    md.append(String.format(Locale.ROOT, "| %s | %d | %s | %.2f | %.0f | %.0f | %.0f | %s |%n",
                            mixed ? "mixed" : "uniform", clients, mode, ips,
                            Stats.median(rs.stream().map(Result::p50).toList()),
                            Stats.median(rs.stream().map(Result::p95).toList()),
                            Stats.median(rs.stream().map(Result::p99).toList()),
                            mode.equals("on") ? String.format(Locale.ROOT, "%.2f", ips / off) : ""));
                }
            }
        }
        System.out.print(md);
        if (a.containsKey("out")) {
            Path out = Path.of(a.get("out")).toAbsolutePath();
            Files.createDirectories(out.getParent());
            Files.writeString(out, md);
        }
        stacks.values().forEach(ManagedChannel::shutdownNow);
        Collections.reverse(owned);
        for (AutoCloseable c : owned) {
            c.close();
        }
    }

    private static GenerateRequest request(int client, int i, boolean mixed) {
        GenerateRequest.Builder b = GenerateRequest.newBuilder().setPrompt(PROMPT).setSeed(client * 1000L + i);
        if (!mixed) {
            return b.setSteps(25).build();
        }
        int k = client * 7 + i;
        return b.setSteps(10 + (k * 13) % 41).setScheduler(SCHEDULERS[k % SCHEDULERS.length])
                .setGuidanceScale(k % 3 == 0 ? 1f : 7.5f).build();
    }

    /** {@code clients} callers, each making {@code each} calls back to back. */
    private static Result run(ManagedChannel ch, int clients, int each, boolean mixed) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<Double> latencies = Collections.synchronizedList(new ArrayList<>());
        long t0 = System.nanoTime();
        List<Future<?>> fs = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            int id = c;
            fs.add(pool.submit(() -> {
                for (int i = 0; i < each; i++) {
                    long s = System.nanoTime();
                    DiffusionGrpc.newBlockingStub(ch).generate(request(id, i, mixed)).forEachRemaining(e -> { });
                    latencies.add((System.nanoTime() - s) / 1e6);
                }
            }));
        }
        for (Future<?> f : fs) {
            f.get();
        }
        pool.shutdown();
        double seconds = (System.nanoTime() - t0) / 1e9;
        List<Double> sorted = new ArrayList<>(latencies);
        Collections.sort(sorted);
        return new Result(clients * each / seconds, pct(sorted, 50), pct(sorted, 95), pct(sorted, 99));
    }

    private static double pct(List<Double> sorted, int p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }

}
