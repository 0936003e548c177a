package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Each service's management port, on the packaged processes (text encoder, denoiser, VAE, orchestrator): its
 * Prometheus metrics change as jobs run (calls by method and status, steps, UNet calls and their rows, jobs and
 * images), its readiness follows its gRPC health (the orchestrator is not ready while a stage is down), and the
 * denoiser's log names the job of each call.
 */
class MetricsIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));
    private final HttpClient http = HttpClient.newHttpClient();

    /** The samples of a Prometheus text exposition, by series (name{labels}). */
    private Map<String, Double> scrape(LocalCluster.Service s) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(s.metricsUrl())).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), s.module());
        Map<String, Double> out = new HashMap<>();
        for (String line : r.body().split("\n")) {
            if (!line.isBlank() && !line.startsWith("#")) {
                String sample = line.replaceFirst(" # \\{.*", ""); // without its exemplar (OpenMetrics)
                int space = sample.lastIndexOf(' ');
                out.put(sample.substring(0, space), Double.parseDouble(sample.substring(space + 1)));
            }
        }
        return out;
    }

    private static double delta(Map<String, Double> before, Map<String, Double> after, String series) {
        assertTrue(after.containsKey(series), "no series " + series + " in " + after.keySet().stream()
                .filter(k -> k.startsWith(series.substring(0, Math.min(series.length(), 12)))).toList());
        return after.get(series) - before.getOrDefault(series, 0.0);
    }

    private HttpResponse<String> ready(LocalCluster.Service s) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.managementPort()
                + "/q/health/ready")).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String calls(String method, String status) {
        return "grpc_server_call_duration_seconds_count{grpc_method=\"" + method + "\",grpc_status=\"" + status
                + "\"}";
    }

    @Test
    void metricsChangeUnderLoadAndReadinessFollowsHealth() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(ROOT, DemoModel.path(), 1, Path.of("target", "it-logs"),
                Map.of())) {
            LocalCluster.Service text = cluster.services().get(0);
            LocalCluster.Service denoiser = cluster.services().get(1);
            LocalCluster.Service vae = cluster.services().get(2);
            LocalCluster.Service orchestrator = cluster.orchestrator();
            assertEquals(1.0, scrape(denoiser).get("sd_model_loaded{model=\"sd-shapes-64\",stage=\"denoiser\"}"));
            Map<String, Double> t0 = scrape(text);
            Map<String, Double> d0 = scrape(denoiser);
            Map<String, Double> v0 = scrape(vae);
            Map<String, Double> o0 = scrape(orchestrator);
            List<String> jobIds = new java.util.ArrayList<>();

            ManagedChannel ch = NettyChannelBuilder.forAddress("localhost", orchestrator.port()).usePlaintext()
                    .maxInboundMessageSize(64 << 20).build();
            try {
                for (int i = 0; i < 3; i++) {
                    var events = DiffusionGrpc.newBlockingStub(ch).withDeadlineAfter(60, TimeUnit.SECONDS).generate(
                            GenerateRequest.newBuilder().setPrompt("a red circle on a blue background").setSeed(i)
                                    .setSteps(10).setNumImages(2).build());
                    jobIds.add(events.next().getAccepted().getJobId());
                    events.forEachRemaining(e -> { });
                }
                assertThrows(StatusRuntimeException.class, () -> DiffusionGrpc.newBlockingStub(ch)
                        .withDeadlineAfter(10, TimeUnit.SECONDS).generate(GenerateRequest.newBuilder()
                                .setPrompt("x").setSteps(500).build()).next());
            } finally {
                ch.shutdownNow();
            }

            Map<String, Double> t1 = scrape(text);
            Map<String, Double> d1 = scrape(denoiser);
            Map<String, Double> v1 = scrape(vae);
            Map<String, Double> o1 = scrape(orchestrator);
            assertEquals(3, delta(t0, t1, calls("sd.v1.TextEncoder/Encode", "OK")));
            assertEquals(3, delta(d0, d1, calls("sd.v1.Denoiser/Denoise", "OK")));
            assertEquals(30, delta(d0, d1, "sd_denoise_steps_total"), "10 steps a job");
            assertEquals(30, delta(d0, d1, "sd_unet_call_rows_count"), "one UNet call a step");
            assertEquals(4 * 30, delta(d0, d1, "sd_unet_call_rows_sum"), "2 images x 2 guidance rows a call");
            assertTrue(delta(d0, d1, "sd_unet_call_duration_seconds_sum") > 0);
            assertEquals(3, delta(v0, v1, calls("sd.v1.Vae/Decode", "OK")));
            assertEquals(3, delta(o0, o1, calls("sd.v1.Diffusion/Generate", "OK")));
            assertEquals(1, delta(o0, o1, calls("sd.v1.Diffusion/Generate", "INVALID_ARGUMENT")));
            assertEquals(3, delta(o0, o1, "sd_jobs_ended_total{state=\"completed\"}"));
            assertEquals(6, delta(o0, o1, "sd_images_generated_total"));
            assertEquals(3, delta(o0, o1, "sd_job_stage_duration_seconds_count{stage=\"denoising\"}"));
            assertEquals(0.0, o1.get("sd_jobs_waiting"));

            // every metric the Grafana dashboard and the autoscaler query ask for is exported by some service
            java.util.Set<String> exported = new java.util.HashSet<>(); // metric names, and their label names
            java.util.regex.Pattern label = java.util.regex.Pattern.compile("([a-z_]+)=\"");
            for (Map<String, Double> m : List.of(t1, d1, v1, o1)) {
                for (String k : m.keySet()) {
                    exported.add(k.replaceFirst("\\{.*", ""));
                    label.matcher(k).results().forEach(r -> exported.add(r.group(1)));
                }
            }
            String queries = Files.readString(ROOT.resolve("deploy/monitoring/grafana-dashboard.json"))
                    + Files.readString(ROOT.resolve("deploy/k8s/components/keda/scaledobject-denoiser.yaml"));
            java.util.regex.Matcher names = java.util.regex.Pattern.compile("\\b(?:sd|grpc)_[a-z_]+").matcher(queries);
            while (names.find()) {
                assertTrue(exported.contains(names.group()), names.group() + " is queried but not exported");
            }

            // the denoiser's log names each job (the orchestrator sends its id in sd-job-id)
            String denoiserLog = Files.readString(denoiser.log());
            for (String id : jobIds) {
                assertTrue(denoiserLog.contains("job " + id + ": denoised 2 image(s), 10 steps"), denoiserLog);
            }

            for (LocalCluster.Service s : cluster.services()) {
                HttpResponse<String> r = ready(s);
                assertEquals(200, r.statusCode(), s.module() + ": " + r.body());
            }
            vae.process().destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            HttpResponse<String> r = ready(orchestrator);
            while (r.statusCode() == 200 && System.nanoTime() < deadline) { // until its next health poll
                Thread.sleep(200);
                r = ready(orchestrator);
            }
            assertEquals(503, r.statusCode(), r.body());
            assertTrue(r.body().contains("vae"), "the reason names the stage: " + r.body());
        }
    }
}
