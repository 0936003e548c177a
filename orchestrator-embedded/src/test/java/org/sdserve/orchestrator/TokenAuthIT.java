package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.CancelRequest;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.EvaluateEvent;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.EvaluationResult;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.ListJobsRequest;
import org.sdserve.proto.v1.WatchRequest;

/**
 * Bearer tokens on the packaged orchestrator-embedded application (sd.orchestrator.tokens-file), over gRPC and
 * HTTP alike: no token or an unknown one is UNAUTHENTICATED (401), a token without the method's right
 * PERMISSION_DENIED (403), a token at its job quota RESOURCE_EXHAUSTED, another token's job NOT_FOUND without the
 * "others" right; the page stays public.
 */
class TokenAuthIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));
    private static final String FULL = "full-access-0123456789";
    private static final String VIEWER = "viewer-only-0123456789";
    private static final String ONE_JOB = "one-job-at-a-time-0123";
    private static LocalCluster server;
    private static ManagedChannel grpc;
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static String base;

    @BeforeAll
    static void start() throws Exception {
        Path tokens = Files.createTempFile("tokens", ".txt");
        tokens.toFile().deleteOnExit();
        Files.write(tokens, List.of("# name token rights quotas", "full " + FULL + " all",
                "viewer " + VIEWER + " watch,list", "single " + ONE_JOB + " generate,watch jobs=1"));
        server = LocalCluster.startEmbedded(ROOT, DemoModel.path(), Path.of("target", "it-logs"),
                Map.of("SD_ORCHESTRATOR_TOKENS_FILE", tokens.toString(), "SD_ORCHESTRATOR_EXTRACTOR_DIR",
                        ROOT.resolve("models/scene-features").toAbsolutePath().toString()));
        grpc = NettyChannelBuilder.forAddress("localhost", server.orchestrator().port()).usePlaintext().build();
        base = "http://127.0.0.1:" + server.httpPort();
        BrowserIT.awaitUrl(base + "/q/openapi"); // (public: /v1 needs a token)
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

    private static CallCredentials bearer(String token) {
        return new CallCredentials() {
            @Override
            public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
                Metadata m = new Metadata();
                m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
                applier.apply(m);
            }
        };
    }

    private static DiffusionGrpc.DiffusionBlockingStub stub(String token) {
        DiffusionGrpc.DiffusionBlockingStub s = DiffusionGrpc.newBlockingStub(grpc).withDeadlineAfter(60,
                TimeUnit.SECONDS);
        return token == null ? s : s.withCallCredentials(bearer(token));
    }

    private static Status status(Runnable call) {
        return assertThrows(StatusRuntimeException.class, call::run).getStatus();
    }

    private static final GenerateRequest SMALL = GenerateRequest.newBuilder().setPrompt("a red circle").setSeed(1)
            .setSteps(4).build();

    @Test
    void grpcCallsNeedAKnownTokenWithTheRight() {
        Status none = status(() -> stub(null).generate(SMALL).next());
        assertEquals(Status.Code.UNAUTHENTICATED, none.getCode());
        assertEquals("a bearer token is required (authorization: Bearer TOKEN)", none.getDescription());
        assertEquals(Status.Code.UNAUTHENTICATED, status(() -> stub("not-a-token-0123456789").listJobs(
                ListJobsRequest.getDefaultInstance())).getCode());
        Status denied = status(() -> stub(VIEWER).generate(SMALL).next());
        assertEquals(Status.Code.PERMISSION_DENIED, denied.getCode());
        assertEquals("the token \"viewer\" may not generate (its rights: list, watch)", denied.getDescription());

        Iterator<GenerateEvent> events = stub(FULL).generate(SMALL);
        String id = events.next().getAccepted().getJobId();
        events.forEachRemaining(e -> { });
        assertEquals(Status.Code.PERMISSION_DENIED, status(() -> stub(VIEWER).cancel(CancelRequest.newBuilder()
                .setJobId(id).build())).getCode());
        stub(FULL).cancel(CancelRequest.newBuilder().setJobId(id).build());

        // a token sees its own jobs; another's only with "others" (full has it through "all")
        Iterator<GenerateEvent> own = stub(ONE_JOB).generate(SMALL);
        String ownId = own.next().getAccepted().getJobId();
        own.forEachRemaining(e -> { });
        WatchRequest watchOwn = WatchRequest.newBuilder().setJobId(ownId).build();
        assertTrue(stub(ONE_JOB).watch(watchOwn).hasNext());
        assertTrue(stub(FULL).watch(watchOwn).hasNext());
        Status hidden = status(() -> stub(VIEWER).watch(watchOwn).next());
        assertEquals(Status.Code.NOT_FOUND, hidden.getCode(), "as if there were no such job");
        assertTrue(stub(VIEWER).listJobs(ListJobsRequest.getDefaultInstance()).getJobsList().isEmpty(),
                "viewer has no jobs of its own");
        assertTrue(stub(FULL).listJobs(ListJobsRequest.getDefaultInstance()).getJobsList().stream()
                .anyMatch(j -> j.getJobId().equals(ownId)));
    }

    /**
     * Evaluate generates, so it takes the generate right, over gRPC and HTTP; a run of a token with a quota of one
     * job runs its jobs one at a time within it, and completes.
     */
    @Test
    void anEvaluationNeedsTheGenerateRightAndKeepsToItsTokensQuota() throws Exception {
        EvaluateRequest small = EvaluateRequest.newBuilder().setImages(16).setSteps(2).build();
        Status denied = status(() -> stub(VIEWER).evaluate(small).next());
        assertEquals(Status.Code.PERMISSION_DENIED, denied.getCode());
        assertEquals("the token \"viewer\" may not generate (its rights: list, watch)", denied.getDescription());
        HttpResponse<String> viewer = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/evaluations"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + VIEWER)
                .POST(HttpRequest.BodyPublishers.ofString("{\"images\": 16}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(403, viewer.statusCode(), viewer.body());

        EvaluationResult result = null;
        for (Iterator<EvaluateEvent> it = stub(ONE_JOB).evaluate(small); it.hasNext(); ) {
            EvaluateEvent e = it.next();
            if (e.hasResult()) {
                result = e.getResult();
            }
        }
        assertTrue(result != null && result.getFid() > 0, String.valueOf(result));
    }

    @Test
    void aTokenAtItsJobQuotaIsRefusedUntilItsJobEnds() {
        Iterator<GenerateEvent> first = stub(ONE_JOB).generate(GenerateRequest.newBuilder().setPrompt("a red circle")
                .setSteps(150).setWidth(192).setHeight(192).build());
        first.next(); // accepted: the job counts from here
        Status second = status(() -> stub(ONE_JOB).generate(SMALL).next());
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, second.getCode());
        assertEquals("\"single\" has 1 jobs waiting or running, its quota; submit again when one ends",
                second.getDescription());
        stub(FULL).generate(SMALL).forEachRemaining(e -> { }); // other tokens are not held back
        first.forEachRemaining(e -> { });
        stub(ONE_JOB).generate(SMALL).forEachRemaining(e -> { });
    }

    @Test
    void httpTakesTheSameTokensAndThePageStaysPublic() throws Exception {
        HttpResponse<String> none = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/jobs"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                        "{\"prompt\": \"a red circle\", \"steps\": 4}")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(401, none.statusCode(), none.body());
        assertTrue(none.headers().firstValue("WWW-Authenticate").orElse("").startsWith("Bearer"));
        assertTrue(none.body().contains("\"code\":\"UNAUTHENTICATED\""), none.body());

        HttpResponse<String> viewer = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/jobs"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + VIEWER)
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"a red circle\", \"steps\": 4}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(403, viewer.statusCode(), viewer.body());

        HttpResponse<String> ok = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/jobs"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + FULL)
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"a red circle\", \"steps\": 4}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(201, ok.statusCode(), ok.body());
        String id = ok.body().replaceFirst(".*\"job_id\":\"([^\"]+)\".*", "$1");
        // another token's job is not there for a token without "others"
        try (SseEvents s = SseEvents.get(HTTP, base + "/v1/jobs/" + id + "/events?access_token=" + VIEWER, null)) {
            assertEquals(404, s.status);
        }
        // EventSource cannot set headers: ?access_token= does
        try (SseEvents s = SseEvents.get(HTTP, base + "/v1/jobs/" + id + "/events?access_token=" + FULL, null)) {
            assertEquals(200, s.status);
            SseEvents.Event last = null;
            for (SseEvents.Event e = s.next(); e != null; e = s.next()) {
                last = e;
            }
            assertEquals("completed", last.name());
        }
        assertEquals(401, HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/jobs/" + id + "/images/0.png"))
                .build(), HttpResponse.BodyHandlers.discarding()).statusCode());
        assertEquals(200, HTTP.send(HttpRequest.newBuilder(URI.create(base + "/")).build(),
                HttpResponse.BodyHandlers.discarding()).statusCode());
    }
}
