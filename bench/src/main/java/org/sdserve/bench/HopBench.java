package org.sdserve.bench;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.onnx.ExecutionOptions;
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

/**
 * Where the four-process cost goes (issue 9, item 5): one generation at a time (25 DDIM steps, guidance 7.5) on
 * the embedded stack (one process, in-process gRPC; ONNX Runtime threads spin between parallel sections, as the
 * bare loop's do) and on four-process clusters on loopback, one per variant of the stages' settings (by default:
 * the defaults, and progress events on every step). Modes interleave, call by call, round after round.
 * Prints the median total, text encoding, denoising, decoding and first denoising progress per mode.
 * {@code java -cp ... org.sdserve.bench.HopBench --model models/sd-shapes-64 --rounds 8 --calls 4
 * [--variants "defaults;SD_DENOISER_PROGRESS_INTERVAL=PT0S;SD_DENOISER_SPIN_WAIT=true"]}
 */
public final class HopBench {
    private static final String PROMPT = "a red circle on a blue background";

    public static void main(String[] args) throws Exception {
        Map<String, String> a = Options.parse(args);
        Path model = Path.of(a.getOrDefault("model", "models/sd-shapes-64"));
        Path root = Path.of(a.getOrDefault("root", "."));
        int rounds = Integer.parseInt(a.getOrDefault("rounds", "8"));
        int calls = Integer.parseInt(a.getOrDefault("calls", "4"));
        Map<String, ManagedChannel> modes = new LinkedHashMap<>();
        List<AutoCloseable> owned = new ArrayList<>();
        EmbeddedStages stages = EmbeddedStages.start(ModelDirectory.open(model), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
        owned.add(stages);
        JobEngine engine = new JobEngine(stages.clients(), new RequestValidator(Limits.DEFAULT, () -> 0L),
                EngineSettings.DEFAULT);
        owned.add(engine);
        String name = "hop-" + System.nanoTime();
        owned.add(ServiceHost.inProcess(name, 64 << 20, List.of(new DiffusionService(engine))));
        modes.put("embedded (1 process)", io.grpc.inprocess.InProcessChannelBuilder.forName(name)
                .maxInboundMessageSize(64 << 20).build());
        // each variant: a cluster whose stage processes get these variables (";" between variants, "," within)
        for (String variant : a.getOrDefault("variants", "defaults;SD_DENOISER_PROGRESS_INTERVAL=PT0S").split(";")) {
            Map<String, String> env = new LinkedHashMap<>();
            for (String kv : variant.equals("defaults") ? new String[0] : variant.split(",")) {
                env.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
            LocalCluster c = LocalCluster.start(root, model, 1, root.resolve("target/hop-logs"), Map.of(), env);
            owned.add(c);
            modes.put("4 processes, " + variant, NettyChannelBuilder.forAddress("localhost",
                    c.orchestrator().port()).usePlaintext().maxInboundMessageSize(64 << 20).build());
        }
        for (ManagedChannel ch : modes.values()) { // warm-up: JIT and ONNX Runtime arenas in every process
            for (int i = 0; i < 40; i++) {
                call(ch, i);
            }
        }
        Map<String, List<double[]>> results = new LinkedHashMap<>();
        modes.keySet().forEach(m -> results.put(m, new ArrayList<>()));
        List<String> names = new ArrayList<>(modes.keySet());
        int k = 0;
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i < calls; i++, k++) {
                for (int j = 0; j < names.size(); j++) { // rotated: no mode always follows the same one
                    String m = names.get((j + k) % names.size());
                    results.get(m).add(call(modes.get(m), r * 100L + i));
                }
            }
        }
        double base = median(results.values().iterator().next(), 0);
        System.out.println("| mode | per image ms | text ms | denoise ms | decode ms | first progress ms | / embedded |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (Map.Entry<String, List<double[]>> m : results.entrySet()) {
            List<double[]> xs = m.getValue();
            System.out.printf(Locale.ROOT, "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f |%n", m.getKey(),
                    median(xs, 0), median(xs, 1), median(xs, 2), median(xs, 3), median(xs, 4),
                    median(xs, 0) / base);
        }
        System.out.printf(Locale.ROOT, "%d rounds x %d calls per mode, interleaved; medians%n", rounds, calls);
        modes.values().forEach(ManagedChannel::shutdownNow);
        for (int i = owned.size() - 1; i >= 0; i--) {
            owned.get(i).close();
        }
    }

    /** {total, text, denoise, decode, first denoising progress} in ms. */
    private static double[] call(ManagedChannel ch, long seed) {
        long t0 = System.nanoTime();
        double first = -1;
        Map<String, Long> stage = Map.of();
        Iterator<GenerateEvent> it = DiffusionGrpc.newBlockingStub(ch).generate(GenerateRequest.newBuilder()
                .setPrompt(PROMPT).setSeed(seed).setSteps(25).setScheduler("ddim").build());
        while (it.hasNext()) {
            GenerateEvent e = it.next();
            if (first < 0 && e.hasProgress() && e.getProgress().getStage() == Stage.STAGE_DENOISING) {
                first = (System.nanoTime() - t0) / 1e6;
            }
            if (e.hasCompleted()) {
                stage = e.getCompleted().getStageMsMap();
            }
        }
        return new double[] {(System.nanoTime() - t0) / 1e6, stage.getOrDefault("text_encoding", 0L),
            stage.getOrDefault("denoising", 0L), stage.getOrDefault("decoding", 0L), first};
    }

    private static double median(List<double[]> xs, int k) {
        return Stats.median(xs.stream().map(x -> x[k]).toList());
    }
}
