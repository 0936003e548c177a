package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.collector.trace.v1.TraceServiceGrpc;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.resource.v1.Resource;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.ScopeSpans;
import io.opentelemetry.proto.trace.v1.Span;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Traces across the four packaged processes, exported over OTLP/gRPC to a collector this test runs (the OTLP
 * TraceService, in this JVM): a job makes one trace holding spans from all four services, nested as the calls
 * were made, the client's traceparent its root (over gRPC and over HTTP); a job without one gets a trace of its own;
 * the denoiser's span holds an event per step; its log line names the trace.
 */
class TracesIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));
    private static final Set<String> SERVICES = Set.of("orchestrator", "text-encoder-svc", "denoiser-svc", "vae-svc");

    /** One received span and the service.name of the process that sent it. */
    record Received(String service, Span span) {
        String traceId() {
            return HexFormat.of().formatHex(span.getTraceId().toByteArray());
        }

        String id() {
            return HexFormat.of().formatHex(span.getSpanId().toByteArray());
        }

        String parentId() {
            return HexFormat.of().formatHex(span.getParentSpanId().toByteArray());
        }

        String attribute(String key) {
            return span.getAttributesList().stream().filter(a -> a.getKey().equals(key)).findFirst()
                    .map(a -> a.getValue().hasIntValue() ? String.valueOf(a.getValue().getIntValue())
                            : a.getValue().getStringValue()).orElse(null);
        }
    }

    /** The OTLP trace collector: keeps every span it is sent. */
    static final class Collector extends TraceServiceGrpc.TraceServiceImplBase {
        final ConcurrentLinkedQueue<Received> spans = new ConcurrentLinkedQueue<>();

        @Override
        public void export(ExportTraceServiceRequest request, StreamObserver<ExportTraceServiceResponse> out) {
            for (ResourceSpans rs : request.getResourceSpansList()) {
                String service = serviceName(rs.getResource());
                for (ScopeSpans ss : rs.getScopeSpansList()) {
                    ss.getSpansList().forEach(s -> spans.add(new Received(service, s)));
                }
            }
            out.onNext(ExportTraceServiceResponse.getDefaultInstance());
            out.onCompleted();
        }

        private static String serviceName(Resource r) {
            return r.getAttributesList().stream().filter(a -> a.getKey().equals("service.name"))
                    .map(KeyValue::getValue).map(v -> v.getStringValue()).findFirst().orElse("?");
        }

        /**
     * The spans of trace {@code traceId}, once there are {@code atLeast} and every service has sent its part (up to
     * 30 s). A job's trace has 13 or more: the orchestrator's request span, job, validate (with a Describe call when
     * it is the first job), queue, encode, denoise, decode and its three stage calls, and the stages' server spans.
     */
        List<Received> trace(String traceId, int atLeast) throws InterruptedException {
            return trace(traceId, atLeast, SERVICES);
        }

        List<Received> trace(String traceId, int atLeast, Set<String> services) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            List<Received> got;
            do {
                Thread.sleep(200);
                got = spans.stream().filter(s -> s.traceId().equals(traceId)).toList();
            } while ((got.size() < atLeast || !got.stream().map(Received::service).collect(Collectors.toSet())
                    .containsAll(services)) && System.nanoTime() < deadline);
            return got;
        }
    }

    private static String hex(int bytes) {
        byte[] b = new byte[bytes];
        ThreadLocalRandom.current().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    private static Received one(List<Received> spans, String service, String name) {
        List<Received> found = spans.stream().filter(s -> s.service().equals(service)
                && s.span().getName().equals(name)).toList();
        assertEquals(1, found.size(), service + " " + name + " in " + describe(spans));
        return found.get(0);
    }

    private static String describe(List<Received> spans) {
        return spans.stream().map(s -> s.service() + ":" + s.span().getName()).sorted().toList().toString();
    }

    private static void assertChild(Received child, Received parent) {
        assertEquals(parent.id(), child.parentId(), child.service() + " " + child.span().getName() + " under "
                + parent.service() + " " + parent.span().getName());
    }

    private static final Collector collector = new Collector();
    private static Server otlp;
    private static Map<String, String> env; // tracing on, exported to the collector

    @BeforeAll
    static void startCollector() throws Exception {
        int port = LocalCluster.freePort();
        otlp = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", port)).addService(collector).build()
                .start();
        env = Map.of("QUARKUS_OTEL_SDK_DISABLED", "false",
                "QUARKUS_OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:" + port,
                "QUARKUS_OTEL_BSP_SCHEDULE_DELAY", "100ms"); // export within a moment of a span's end
    }

    @AfterAll
    static void stopCollector() {
        otlp.shutdownNow();
    }

    private static Metadata traceparent(String traceId, String spanId) {
        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER),
                "00-" + traceId + "-" + spanId + "-01");
        return headers;
    }

    @Test
    void aJobIsOneTraceAcrossTheFourServices() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(ROOT, DemoModel.path(), 1, Path.of("target", "it-logs"),
                env, env)) {
            // a client that traces: its traceparent (W3C) makes the job part of its trace
            String clientTrace = hex(16);
            String clientSpan = hex(8);
            Metadata headers = traceparent(clientTrace, clientSpan);
            ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", cluster.orchestrator().port())
                    .usePlaintext().maxInboundMessageSize(64 << 20).build();
            String jobId;
            String otherJobId;
            try {
                var events = DiffusionGrpc.newBlockingStub(ch).withDeadlineAfter(60, TimeUnit.SECONDS)
                        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
                        .generate(GenerateRequest.newBuilder().setPrompt("a red circle on a blue background")
                                .setSeed(1).setSteps(10).build());
                jobId = events.next().getAccepted().getJobId();
                events.forEachRemaining(e -> { });
                // one without: a trace of its own, rooted at the orchestrator
                var other = DiffusionGrpc.newBlockingStub(ch).withDeadlineAfter(60, TimeUnit.SECONDS)
                        .generate(GenerateRequest.newBuilder().setPrompt("a green square").setSteps(3).build());
                otherJobId = other.next().getAccepted().getJobId();
                other.forEachRemaining(e -> { });
            } finally {
                ch.shutdownNow();
            }

            List<Received> trace = collector.trace(clientTrace, 13);
            assertEquals(SERVICES, trace.stream().map(Received::service).collect(Collectors.toSet()),
                    describe(trace));
            Received generate = one(trace, "orchestrator", "sd.v1.Diffusion/Generate");
            assertEquals(clientSpan, generate.parentId(), "the client's span is the Generate call's parent");
            Received job = one(trace, "orchestrator", "job");
            assertChild(job, generate);
            assertEquals(jobId, job.attribute("sd.job.id"));
            assertEquals("completed", job.attribute("sd.job.state"));
            assertEquals("10", job.attribute("sd.steps"));
            for (String stage : List.of("validate", "queue", "encode", "denoise", "decode")) {
                assertChild(one(trace, "orchestrator", stage), job);
            }
            // the first job's validation asked the denoiser for the model's description
            Received describe = one(trace, "denoiser-svc", "sd.v1.Denoiser/Describe");
            assertChild(trace.stream().filter(s -> s.id().equals(describe.parentId())).findFirst().orElseThrow(),
                    one(trace, "orchestrator", "validate"));
            // each stage call: the orchestrator's client span in its stage span, the stage's server span in that
            Map<String, String> calls = Map.of("encode", "sd.v1.TextEncoder/Encode", "denoise",
                    "sd.v1.Denoiser/Denoise", "decode", "sd.v1.Vae/Decode");
            Map<String, String> servers = Map.of("encode", "text-encoder-svc", "denoise", "denoiser-svc",
                    "decode", "vae-svc");
            for (String stage : calls.keySet()) {
                Received client = trace.stream().filter(s -> s.service().equals("orchestrator")
                        && s.span().getName().equals(calls.get(stage))
                        && s.span().getKind() == Span.SpanKind.SPAN_KIND_CLIENT).findFirst().orElseThrow();
                assertChild(client, one(trace, "orchestrator", stage));
                Received server = one(trace, servers.get(stage), calls.get(stage));
                assertEquals(Span.SpanKind.SPAN_KIND_SERVER, server.span().getKind());
                assertChild(server, client);
            }
            Received denoise = one(trace, "denoiser-svc", "sd.v1.Denoiser/Denoise");
            List<Long> steps = denoise.span().getEventsList().stream().filter(e -> e.getName().equals("step"))
                    .map(e -> e.getAttributesList().stream().filter(a -> a.getKey().equals("sd.step")).findFirst()
                            .orElseThrow().getValue().getIntValue()).toList();
            assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L, 10L), steps, "an event per step");

            // the other job: its own trace, rooted at its Generate call
            Received otherJob = collector.spans.stream().filter(s -> s.span().getName().equals("job")
                    && otherJobId.equals(s.attribute("sd.job.id"))).findFirst().orElseThrow();
            assertNotEquals(clientTrace, otherJob.traceId());
            List<Received> otherTrace = collector.trace(otherJob.traceId(), 13);
            assertEquals(SERVICES, otherTrace.stream().map(Received::service).collect(Collectors.toSet()));
            assertTrue(one(otherTrace, "orchestrator", "sd.v1.Diffusion/Generate").span().getParentSpanId()
                    .isEmpty(), "a root span");

            // over HTTP: the traceparent header, the request's span, the job in it
            String httpTrace = hex(16);
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                    "http://127.0.0.1:" + cluster.httpPort() + "/v1/jobs")).header("Content-Type",
                    "application/json").header("Accept", "text/event-stream")
                    .header("traceparent", "00-" + httpTrace + "-" + hex(8) + "-01")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"a blue circle\", \"steps\": 3}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(r.body().matches("(?s).*event: ?completed.*"), r.body());
            List<Received> viaHttp = collector.trace(httpTrace, 13);
            assertEquals(SERVICES, viaHttp.stream().map(Received::service).collect(Collectors.toSet()),
                    describe(viaHttp));
            Received httpJob = one(viaHttp, "orchestrator", "job");
            Received request = viaHttp.stream().filter(s -> s.id().equals(httpJob.parentId())).findFirst()
                    .orElseThrow(() -> new AssertionError("the job's parent is not in " + describe(viaHttp)));
            assertEquals(Span.SpanKind.SPAN_KIND_SERVER, request.span().getKind(), request.span().getName());

            // the denoiser's metrics link to traces: exemplars of its call histogram name traces it sent
            HttpResponse<String> metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                    cluster.services().get(1).metricsUrl())).build(), HttpResponse.BodyHandlers.ofString());
            Set<String> sent = collector.spans.stream().map(Received::traceId).collect(Collectors.toSet());
            List<String> exemplars = java.util.regex.Pattern.compile("grpc_server_call_duration_seconds_bucket\\{"
                    + "grpc_method=\"sd.v1.Denoiser/Denoise\".*# \\{span_id=\"[0-9a-f]{16}\",trace_id=\"([0-9a-f]{32})\"\\}")
                    .matcher(metrics.body()).results().map(m -> m.group(1)).toList();
            assertFalse(exemplars.isEmpty(), metrics.statusCode() + " " + metrics.headers().firstValue("Content-Type")
                    + "\n" + metrics.body());
            assertTrue(sent.containsAll(exemplars), exemplars.toString());

            // the denoiser's log line names the job and its trace
            String log = Files.readString(cluster.services().get(1).log());
            assertTrue(log.contains("job " + jobId + " [trace " + clientTrace + "]: denoised 1 image(s)"), log);
            assertFalse(collector.spans.stream().anyMatch(s -> s.span().getName().startsWith("grpc.health")),
                    "health checks are not traced");
        }
    }

    @Test
    void embeddedModeTracesItsInProcessStageCalls() throws Exception {
        try (LocalCluster cluster = LocalCluster.startEmbedded(ROOT, DemoModel.path(), Path.of("target", "it-logs"),
                env)) {
            String traceId = hex(16);
            ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", cluster.orchestrator().port())
                    .usePlaintext().maxInboundMessageSize(64 << 20).build();
            try {
                DiffusionGrpc.newBlockingStub(ch).withDeadlineAfter(60, TimeUnit.SECONDS)
                        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(traceparent(traceId, hex(8))))
                        .generate(GenerateRequest.newBuilder().setPrompt("a red circle").setSteps(4).build())
                        .forEachRemaining(e -> { });
            } finally {
                ch.shutdownNow();
            }
            List<Received> trace = collector.trace(traceId, 13, Set.of("orchestrator-embedded"));
            assertEquals(Set.of("orchestrator-embedded"), trace.stream().map(Received::service)
                    .collect(Collectors.toSet()));
            for (String call : List.of("sd.v1.TextEncoder/Encode", "sd.v1.Denoiser/Denoise", "sd.v1.Vae/Decode")) {
                String name = call;
                Received server = trace.stream().filter(s -> s.span().getName().equals(name)
                        && s.span().getKind() == Span.SpanKind.SPAN_KIND_SERVER).findFirst()
                        .orElseThrow(() -> new AssertionError(name + " in " + describe(trace)));
                Received client = trace.stream().filter(s -> s.id().equals(server.parentId())).findFirst()
                        .orElseThrow();
                assertEquals(Span.SpanKind.SPAN_KIND_CLIENT, client.span().getKind());
            }
        }
    }
}
