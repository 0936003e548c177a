package org.sdserve.bench;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * The soak of issue 11: the packaged services as processes (text encoder, two denoisers, VAE, orchestrator), N
 * clients generating back to back for M minutes, every answer counted by status, and each process's resident
 * memory sampled every 30 s; the growth after warm-up is fitted per process (MB/min).
 *
 * <pre>java -cp "bench/target/bench-0.1.0-SNAPSHOT.jar:bench/target/lib/*" org.sdserve.bench.Soak --root .
 *     --model models/sd-shapes-64 --clients 16 --minutes 10 --warmup-minutes 2 --out target/soak.md</pre>
 */
public final class Soak {
    private Soak() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> o = Options.parse(args);
        Path root = Path.of(o.getOrDefault("root", "."));
        Path model = Path.of(o.getOrDefault("model", "models/sd-shapes-64"));
        int clients = Integer.parseInt(o.getOrDefault("clients", "16"));
        double minutes = Double.parseDouble(o.getOrDefault("minutes", "10"));
        double warmup = Double.parseDouble(o.getOrDefault("warmup-minutes", "2"));
        Path out = Path.of(o.getOrDefault("out", "target/soak.md"));
        Map<String, AtomicLong> outcomes = new ConcurrentHashMap<>();
        List<String> names = new ArrayList<>();
        List<long[]> samples = new ArrayList<>(); // [seconds, rss kB per process...]
        try (LocalCluster cluster = LocalCluster.start(root, model, 2, root.resolve("target/soak-logs"), Map.of())) {
            List<LocalCluster.Service> services = cluster.services();
            for (LocalCluster.Service s : services) {
                names.add(s.module() + ":" + s.port());
            }
            ManagedChannel ch = NettyChannelBuilder.forAddress("localhost", cluster.orchestrator().port())
                    .usePlaintext().maxInboundMessageSize(64 << 20).build();
            long t0 = System.nanoTime();
            long end = t0 + (long) (minutes * 60e9);
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            for (int c = 0; c < clients; c++) {
                int client = c;
                pool.submit(() -> {
                    for (long i = 0; System.nanoTime() < end; i++) {
                        GenerateRequest r = GenerateRequest.newBuilder().setPrompt("a red circle on a blue background")
                                .setSeed(client * 1_000_000L + i).setSteps(20).build();
                        String outcome;
                        try {
                            DiffusionGrpc.newBlockingStub(ch).withDeadlineAfter(120, TimeUnit.SECONDS).generate(r)
                                    .forEachRemaining(e -> { });
                            outcome = "OK";
                        } catch (StatusRuntimeException e) {
                            outcome = e.getStatus().getCode() + (e.getStatus().getCode() == Status.Code.OK ? ""
                                    : ": " + String.valueOf(e.getStatus().getDescription()).replaceAll("[0-9a-f-]{36}",
                                    "<id>").substring(0, Math.min(80, String.valueOf(e.getStatus().getDescription())
                                    .length())));
                        }
                        outcomes.computeIfAbsent(outcome, k -> new AtomicLong()).incrementAndGet();
                    }
                });
            }
            while (System.nanoTime() < end) {
                long[] row = new long[services.size() + 1];
                row[0] = (System.nanoTime() - t0) / 1_000_000_000L;
                for (int i = 0; i < services.size(); i++) {
                    row[i + 1] = Bench.rssKb(services.get(i).process());
                }
                samples.add(row);
                System.out.printf("%4d s %s %s%n", row[0], java.util.Arrays.toString(java.util.Arrays.copyOfRange(row,
                        1, row.length)), outcomes);
                Thread.sleep(Math.min(30_000, Math.max(1, (end - System.nanoTime()) / 1_000_000)));
            }
            pool.shutdown();
            pool.awaitTermination(3, TimeUnit.MINUTES);
            ch.shutdownNow();
        }
        StringBuilder md = new StringBuilder();
        md.append(String.format("Soak: %d clients for %.0f minutes, 64x64, 20 DDIM steps, guided; text encoder, two "
                + "denoisers, VAE, orchestrator as processes.%n%nAnswers: %s%n%n", clients, minutes, outcomes));
        md.append("| process | RSS MB at start | after warm-up | at end | growth after warm-up, MB/min |\n|---|---|---|---|---|\n");
        for (int p = 0; p < names.size(); p++) {
            long first = samples.get(0)[p + 1];
            long last = samples.get(samples.size() - 1)[p + 1];
            long warm = first;
            double sx = 0, sy = 0, sxx = 0, sxy = 0;
            int n = 0;
            for (long[] s : samples) {
                if (s[0] >= warmup * 60) {
                    if (n == 0) {
                        warm = s[p + 1];
                    }
                    double x = s[0] / 60.0, y = s[p + 1] / 1024.0;
                    sx += x; sy += y; sxx += x * x; sxy += x * y; n++;
                }
            }
            double slope = n >= 2 ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : Double.NaN;
            md.append(String.format("| %s | %d | %d | %d | %+.2f |%n", names.get(p), first / 1024, warm / 1024,
                    last / 1024, slope));
        }
        Files.createDirectories(out.toAbsolutePath().getParent());
        Files.writeString(out, md);
        System.out.print(md);
    }
}
