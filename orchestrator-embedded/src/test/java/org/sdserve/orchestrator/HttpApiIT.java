package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.EvaluationResult;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * The HTTP/SSE API of the packaged orchestrator-embedded application, over real sockets: a job submitted and
 * followed over HTTP gives the PNG that gRPC gives for the same request; bad requests get the gRPC message with its
 * HTTP status and field; a dropped event stream goes on from Last-Event-ID; cancel; unknown ids; the OpenAPI
 * document served is the one committed (docs/openapi.json).
 */
class HttpApiIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));
    private static final ObjectMapper JSON = new ObjectMapper();
    private static LocalCluster server;
    private static ManagedChannel grpc;
    private static HttpClient http;
    private static String base;

    @BeforeAll
    static void start() throws Exception {
        server = LocalCluster.startEmbedded(ROOT, DemoModel.path(), Path.of("target", "it-logs"),
                Map.of("SD_ORCHESTRATOR_EXTRACTOR_DIR", ROOT.resolve("models/scene-features").toAbsolutePath()
                        .toString()));
        grpc = NettyChannelBuilder.forAddress("localhost", server.orchestrator().port()).usePlaintext()
                .maxInboundMessageSize(64 << 20).build();
        http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        base = "http://127.0.0.1:" + server.httpPort();
        BrowserIT.awaitHttp(base);
    }

    @AfterAll
    static void stop() {
        if (grpc != null) {
            grpc.shutdownNow();
        }
        if (server != null) {
            server.close();
        }
    }

    private static HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(base + path)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> post(String json) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(base + "/v1/jobs")).header("Content-Type",
                "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static String submit(String json) throws Exception {
        HttpResponse<String> r = post(json);
        assertEquals(201, r.statusCode(), r.body());
        JsonNode a = JSON.readTree(r.body());
        assertEquals("/v1/jobs/" + a.get("job_id").asText() + "/events", a.get("events_url").asText());
        return a.get("job_id").asText();
    }

    private static List<SseEvents.Event> all(SseEvents s) {
        List<SseEvents.Event> out = new ArrayList<>();
        for (SseEvents.Event e = s.next(); e != null; e = s.next()) {
            out.add(e);
        }
        return out;
    }

    @Test
    void aJobOverHttpMakesTheImageThatGrpcMakes() throws Exception {
        String id = submit("{\"prompt\": \"a small yellow triangle on a purple background\", \"seed\": 42, "
                + "\"steps\": 12, \"scheduler\": \"dpmpp_2m\", \"num_images\": 2, \"preview_interval\": 4}");
        List<SseEvents.Event> events;
        try (SseEvents s = SseEvents.get(http, base + "/v1/jobs/" + id + "/events", null)) {
            assertEquals(200, s.status);
            assertTrue(s.contentType.startsWith("text/event-stream"), s.contentType);
            events = all(s);
        }
        assertEquals("accepted", events.get(0).name());
        assertEquals(1, events.get(0).seq());
        assertEquals("[42,43]", events.get(0).data().get("seeds").toString());
        assertEquals("completed", events.get(events.size() - 1).name());
        for (int i = 1; i < events.size(); i++) {
            assertTrue(events.get(i).seq() > events.get(i - 1).seq(), "seqs increase");
        }
        assertTrue(events.stream().anyMatch(e -> e.name().equals("preview")), "previews were asked for");
        List<SseEvents.Event> images = events.stream().filter(e -> e.name().equals("image")).toList();
        assertEquals(2, images.size());

        Iterator<GenerateEvent> it = DiffusionGrpc.newBlockingStub(grpc).withDeadlineAfter(60, TimeUnit.SECONDS)
                .generate(GenerateRequest.newBuilder().setPrompt("a small yellow triangle on a purple background")
                        .setSeed(42).setSteps(12).setScheduler("dpmpp_2m").setNumImages(2).build());
        List<byte[]> viaGrpc = new ArrayList<>();
        it.forEachRemaining(e -> {
            if (e.hasImage()) {
                viaGrpc.add(e.getImage().getPng().toByteArray());
            }
        });
        for (SseEvents.Event image : images) {
            int index = image.data().get("index").asInt();
            HttpResponse<byte[]> png = http.send(HttpRequest.newBuilder(URI.create(base + image.data().get("url")
                    .asText())).build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, png.statusCode());
            assertEquals("image/png", png.headers().firstValue("content-type").orElse(""));
            assertArrayEquals(viaGrpc.get(index), png.body(), "image " + index + " over HTTP = over gRPC");
        }
    }

    /**
     * POST /v1/evaluations: progress events, then the result, whose figures are Diffusion.Evaluate's for the same
     * request (the packaged embedded orchestrator's VAE stage serves the extractor of
     * SD_ORCHESTRATOR_EXTRACTOR_DIR); a bad field is refused before the stream with the gRPC message and its field.
     */
    @Test
    void anEvaluationOverHttpGivesTheFiguresThatGrpcGives() throws Exception {
        HttpRequest post = HttpRequest.newBuilder(URI.create(base + "/v1/evaluations"))
                .timeout(Duration.ofSeconds(120)).header("Content-Type", "application/json")
                .header("Accept", "text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString("{\"images\": 24, \"steps\": 4, \"seed\": 5}")).build();
        List<SseEvents.Event> events;
        try (SseEvents s = SseEvents.open(http, post)) {
            assertEquals(200, s.status);
            events = all(s);
        }
        SseEvents.Event last = events.get(events.size() - 1);
        assertEquals("result", last.name(), events.toString());
        assertTrue(events.subList(0, events.size() - 1).stream().allMatch(e -> e.name().equals("progress")),
                events.toString());
        assertEquals(24, events.get(events.size() - 2).data().get("images_done").asInt());
        assertTrue(events.get(events.size() - 2).data().get("measuring").asBoolean(), "then the measures");
        JsonNode r = last.data();
        assertEquals(24, r.get("resolved").get("images").asInt());
        assertEquals("scene-features", r.get("extractor").asText());

        EvaluationResult viaGrpc = null;
        var it = DiffusionGrpc.newBlockingStub(grpc).withDeadlineAfter(120, TimeUnit.SECONDS)
                .evaluate(EvaluateRequest.newBuilder().setImages(24).setSteps(4).setSeed(5).build());
        while (it.hasNext()) {
            var e = it.next();
            if (e.hasResult()) {
                viaGrpc = e.getResult();
            }
        }
        assertEquals(viaGrpc.getFid(), r.get("fid").asDouble(), 0.0, "FID");
        assertEquals(viaGrpc.getKid(), r.get("kid").asDouble(), 0.0, "KID");
        assertEquals(viaGrpc.getPrecision(), r.get("precision").asDouble(), 0.0, "precision");
        assertEquals(viaGrpc.getRecall(), r.get("recall").asDouble(), 0.0, "recall");
        assertEquals(viaGrpc.getInceptionScore(), r.get("inception_score").asDouble(), 0.0, "IS");
        assertEquals(viaGrpc.getAdherence().getShape(), r.get("adherence").get("shape").asDouble(), 0.0);

        HttpResponse<String> bad = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/evaluations"))
                .header("Content-Type", "application/json").header("Accept", "text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString("{\"images\": 3}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(400, bad.statusCode(), bad.body());
        JsonNode error = JSON.readTree(bad.body());
        assertEquals("INVALID_ARGUMENT", error.get("code").asText());
        assertEquals("images must be in [16, 2048] (sd.orchestrator.max-evaluation-images), got 3",
                error.get("message").asText());
        assertEquals("images", error.get("field").asText());
    }

    /** Each request over HTTP, and the same over gRPC: the same code and message; HTTP adds the field. */
    @Test
    void badRequestsGetTheGrpcMessageWithTheirField() throws Exception {
        record Case(String json, GenerateRequest proto, String field) {
        }
        GenerateRequest.Builder ok = GenerateRequest.newBuilder().setPrompt("a red circle");
        List<Case> cases = List.of(
                new Case("{\"prompt\": \"a red circle\", \"steps\": 500}", ok.clone().setSteps(500).build(), "steps"),
                new Case("{\"prompt\": \"a red circle\", \"width\": 17}", ok.clone().setWidth(17).build(), "width"),
                new Case("{\"prompt\": \"a red circle\", \"scheduler\": \"nope\"}",
                        ok.clone().setScheduler("nope").build(), "scheduler"),
                new Case("{\"prompt\": \"   \"}", GenerateRequest.newBuilder().setPrompt("   ").build(), "prompt"),
                new Case("{\"prompt\": \"a red circle\", \"guidance_scale\": 1000}",
                        ok.clone().setGuidanceScale(1000).build(), "guidance_scale"),
                new Case("{\"prompt\": \"a red circle\", \"steps\": 10, \"preview_interval\": 11}",
                        ok.clone().setSteps(10).setPreviewInterval(11).build(), "preview_interval"),
                new Case("{\"prompt\": \"a red circle\", \"num_images\": 9}", ok.clone().setNumImages(9).build(),
                        "num_images"),
                // image-to-image: base64 of a non-image, and a strength without an image
                new Case("{\"prompt\": \"a red circle\", \"init_image\": \"data:image/png;base64,bm90IGEgcG5n\"}",
                        ok.clone().setInitImage(com.google.protobuf.ByteString.copyFromUtf8("not a png")).build(),
                        "init_image"),
                new Case("{\"prompt\": \"a red circle\", \"strength\": 0.5}", ok.clone().setStrength(0.5f).build(),
                        "strength"));
        for (Case c : cases) {
            HttpResponse<String> r = post(c.json());
            JsonNode err = JSON.readTree(r.body());
            StatusRuntimeException g = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
                    () -> DiffusionGrpc.newBlockingStub(grpc).withDeadlineAfter(10, TimeUnit.SECONDS)
                            .generate(c.proto()).next());
            assertEquals(400, r.statusCode(), c.json());
            assertEquals(400, err.get("status").asInt());
            assertEquals(g.getStatus().getCode().name(), err.get("code").asText(), c.json());
            assertEquals(g.getStatus().getDescription(), err.get("message").asText(), c.json());
            assertEquals(c.field(), err.get("field").asText(), c.json());
        }
        // what only JSON can get wrong
        Map<String, String> jsonOnly = Map.of(
                "{\"prompt\": \"x\", \"stepz\": 3}", "unknown field \"stepz\"",
                "{\"prompt\": \"x\", \"width\": \"wide\"}", "width must be an integer",
                "{\"prompt\": \"x\", \"num_images\": 2.5}", "num_images must be an integer",
                "{\"prompt\": \"x\", \"init_image\": \"%%%\"}", "init_image must be base64",
                "{\"prompt\": ", "the body is not valid JSON",
                "{\"prompt\": \"x\", \"seed\": -1}", "seed must be in [0, 9007199254740991], got -1",
                "{\"prompt\": \"x\", \"priority\": \"urgent\"}", "priority must be \"interactive\" or \"batch\"");
        for (Map.Entry<String, String> c : jsonOnly.entrySet()) {
            HttpResponse<String> r = post(c.getKey());
            assertEquals(400, r.statusCode(), c.getKey() + " -> " + r.body());
            assertTrue(JSON.readTree(r.body()).get("message").asText().startsWith(c.getValue()),
                    c.getKey() + " -> " + r.body());
        }
        HttpResponse<String> big = post("{\"prompt\": \"" + "x".repeat(20_000) + "\"}");
        assertEquals(400, big.statusCode());
        assertTrue(big.body().length() < 300, "the message does not echo the prompt: " + big.body().length());
    }

    @Test
    void aDroppedStreamGoesOnFromLastEventId() throws Exception {
        String id = submit("{\"prompt\": \"a large red cross on a white background\", \"seed\": 3, \"steps\": 60}");
        String url = base + "/v1/jobs/" + id + "/events";
        long lastSeen;
        try (SseEvents s = SseEvents.get(http, url, null)) {
            SseEvents.Event e;
            do {
                e = s.next();
                assertNotNull(e, "the stream ended before denoising step 5");
            } while (!(e.name().equals("progress") && e.data().get("stage").asText().equals("denoising")
                    && e.data().get("step").asInt() >= 5));
            lastSeen = e.seq();
        } // dropped here, mid-job
        List<SseEvents.Event> rest;
        try (SseEvents s = SseEvents.get(http, url, Long.toString(lastSeen))) {
            rest = all(s);
        }
        assertTrue(rest.get(0).seq() > lastSeen, "replay starts after Last-Event-ID");
        assertTrue(rest.stream().noneMatch(e -> e.name().equals("accepted")));
        assertEquals("image", rest.get(rest.size() - 2).name());
        assertEquals("completed", rest.get(rest.size() - 1).name());
        // ?after= does the same for clients that cannot set headers; after the end, only the end is replayed
        try (SseEvents s = SseEvents.get(http, url + "?after=" + rest.get(rest.size() - 2).seq(), null)) {
            List<SseEvents.Event> tail = all(s);
            assertEquals(1, tail.size());
            assertEquals("completed", tail.get(0).name());
        }
    }

    @Test
    void cancelEndsTheStreamWithAFailedEvent() throws Exception {
        String id = submit("{\"prompt\": \"a blue square on a black background\", \"steps\": 200, "
                + "\"width\": 256, \"height\": 256}");
        try (SseEvents s = SseEvents.get(http, base + "/v1/jobs/" + id + "/events", null)) {
            SseEvents.Event e;
            do {
                e = s.next();
            } while (!e.name().equals("progress") || !e.data().get("stage").asText().equals("denoising"));
            HttpResponse<String> cancel = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/jobs/" + id))
                    .DELETE().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, cancel.statusCode(), cancel.body());
            assertEquals("running", JSON.readTree(cancel.body()).get("state").asText());
            List<SseEvents.Event> rest = all(s);
            SseEvents.Event last = rest.get(rest.size() - 1);
            assertEquals("failed", last.name(), rest.toString());
            assertEquals("CANCELLED", last.data().get("code").asText());
            assertEquals(499, last.data().get("status").asInt());
        }
        HttpResponse<String> again = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/jobs/" + id)).DELETE()
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals("cancelled", JSON.readTree(again.body()).get("state").asText(), "an ended job is left as it is");
    }

    @Test
    void unknownJobsAndPathsAre404WithABody() throws Exception {
        for (String path : List.of("/v1/jobs/no-such-job/events", "/v1/jobs/no-such-job/images/0.png", "/v1/nothing")) {
            HttpResponse<String> r = get(path);
            assertEquals(404, r.statusCode(), path);
            assertEquals("NOT_FOUND", JSON.readTree(r.body()).get("code").asText(), path);
        }
        HttpResponse<String> list = get("/v1/jobs?limit=5000");
        assertEquals(400, list.statusCode());
        assertEquals("limit must be in [0, 1000], got 5000", JSON.readTree(list.body()).get("message").asText());
        HttpResponse<String> bad = get("/v1/jobs/x/events?after=abc");
        assertEquals(400, bad.statusCode());
    }

    /** The final latents as a NumPy .npy download: the header numpy.lib.format writes, then gRPC's bytes. */
    @Test
    void latentsAreEventsAndANpyDownload() throws Exception {
        String id = submit("{\"prompt\": \"a small white cross on a red background\", \"seed\": 5, \"steps\": 8, "
                + "\"latents_interval\": 4}");
        List<SseEvents.Event> latents;
        try (SseEvents s = SseEvents.get(http, base + "/v1/jobs/" + id + "/events", null)) {
            latents = all(s).stream().filter(e -> e.name().equals("latents")).toList();
        }
        assertEquals(List.of("4 false", "8 true"), latents.stream().map(e -> e.data().get("step").asInt() + " "
                + e.data().get("final").asBoolean()).toList());
        assertEquals("[1,4,8,8]", latents.get(1).data().get("shape").toString());
        HttpResponse<byte[]> npy = http.send(HttpRequest.newBuilder(URI.create(base + latents.get(1).data()
                .get("url").asText())).build(), HttpResponse.BodyHandlers.ofByteArray());
        assertEquals(200, npy.statusCode());
        assertEquals("8", npy.headers().firstValue("X-Latents-Step").orElse(""));
        byte[] b = npy.body();
        assertEquals((byte) 0x93, b[0]);
        assertEquals("NUMPY", new String(b, 1, 5, java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(1, b[6], "format version 1.0");
        int headerLength = (b[8] & 0xff) | (b[9] & 0xff) << 8;
        assertEquals(0, (10 + headerLength) % 64, "the data starts 64-byte aligned");
        String header = new String(b, 10, headerLength, java.nio.charset.StandardCharsets.US_ASCII);
        assertEquals("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 8, 8), }", header.trim());
        byte[] data = java.util.Arrays.copyOfRange(b, 10 + headerLength, b.length);

        Iterator<GenerateEvent> it = DiffusionGrpc.newBlockingStub(grpc).withDeadlineAfter(60, TimeUnit.SECONDS)
                .generate(GenerateRequest.newBuilder().setPrompt("a small white cross on a red background").setSeed(5)
                        .setSteps(8).setLatentsInterval(4).build());
        byte[] viaGrpc = null;
        while (it.hasNext()) {
            GenerateEvent e = it.next();
            if (e.hasLatents() && e.getLatents().getFinal()) {
                viaGrpc = e.getLatents().getLatents().getData().toByteArray();
            }
        }
        assertArrayEquals(viaGrpc, data, "the .npy holds the final latents gRPC streams");
        HttpResponse<String> none = get("/v1/jobs/" + submit("{\"prompt\": \"a red circle\", \"steps\": 2}")
                + "/latents.npy");
        assertEquals(404, none.statusCode());
        assertTrue(JSON.readTree(none.body()).get("message").asText().endsWith("did not ask for latents "
                + "(latents_interval 0)"), none.body());
    }

    @Test
    void theServedOpenApiDocumentIsTheCommittedOne() throws Exception {
        HttpResponse<String> r = get("/q/openapi?format=json");
        assertEquals(200, r.statusCode());
        Path committed = ROOT.resolve("docs/openapi.json");
        // as JSON trees: the served document orders some keys differently from the one the build stores
        assertEquals(JSON.readTree(Files.readString(committed)), JSON.readTree(r.body()), "docs/openapi.json is "
                + "stale: copy orchestrator/target/openapi/openapi.json (written by the build) over it");
    }

    /** Embedded mode: the in-process denoiser's meters are on the process's management port too. */
    @Test
    void embeddedModeExportsTheDenoisersMetrics() throws Exception {
        String id = submit("{\"prompt\": \"a red circle\", \"steps\": 3}");
        try (SseEvents s = SseEvents.get(http, base + "/v1/jobs/" + id + "/events", null)) {
            all(s);
        }
        HttpResponse<String> m = http.send(HttpRequest.newBuilder(URI.create(server.orchestrator().metricsUrl()))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, m.statusCode());
        // at least this job's: 3 steps, 3 UNet calls, 1 completed job
        Map<String, Double> atLeast = Map.of("sd_unet_call_duration_seconds_count", 3.0, "sd_denoise_steps_total", 3.0,
                "sd_jobs_ended_total{state=\"completed\"}", 1.0);
        for (Map.Entry<String, Double> e : atLeast.entrySet()) {
            String line = m.body().lines().filter(l -> l.startsWith(e.getKey() + " ")).findFirst().orElse(null);
            assertNotNull(line, e.getKey() + " is not exported");
            assertTrue(Double.parseDouble(line.substring(e.getKey().length() + 1)) >= e.getValue(), line);
        }
    }

    @Test
    void thePageAndItsFilesAreServed() throws Exception {
        HttpResponse<String> page = get("/");
        assertEquals(200, page.statusCode());
        assertTrue(page.body().contains("<form id=\"job-form\""));
        for (String f : List.of("/app.js", "/app.css")) {
            assertEquals(200, get(f).statusCode(), f);
        }
    }
}
