package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.common.trace.Tracing;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * A job's spans as it ends in each way, in embedded mode with the OpenTelemetry SDK's in-memory exporter: refused
 * (no id; the failed check in its validate span), cancelled while queued (its queue span ended; no stage span),
 * completed (every stage span, the stages' server spans under the orchestrator's calls).
 */
class JobTraceTest {
    private static final AttributeKey<String> JOB_ID = AttributeKey.stringKey("sd.job.id");
    private static final AttributeKey<String> STATE = AttributeKey.stringKey("sd.job.state");
    private static final InMemorySpanExporter spans = InMemorySpanExporter.create();
    private static OpenTelemetrySdk sdk;
    private static EmbeddedStages stages;
    private static InProcessOrchestrator orchestrator;

    @BeforeAll
    static void start() {
        sdk = OpenTelemetrySdk.builder()
                .setTracerProvider(SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(spans))
                        .build())
                .setPropagators(ContextPropagators.create(W3CTraceContextPropagator.getInstance())).build();
        Tracing.use(sdk); // before the servers and channels are built
        stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
        orchestrator = InProcessOrchestrator.start(stages.clients(), 1L, 1, 4); // one slot: the second job waits
    }

    @AfterAll
    static void stop() {
        orchestrator.close();
        stages.close();
        Tracing.use(OpenTelemetry.noop());
        sdk.close();
    }

    private static List<SpanData> trace(String traceId) {
        return spans.getFinishedSpanItems().stream().filter(s -> s.getTraceId().equals(traceId)).toList();
    }

    private static SpanData named(List<SpanData> trace, String name) {
        return trace.stream().filter(s -> s.getName().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError(name + " in " + trace.stream().map(SpanData::getName).toList()));
    }

    private static SpanData job(String id) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10); // it ends just after the client hears
        while (System.nanoTime() < deadline) {
            for (SpanData s : spans.getFinishedSpanItems()) {
                if (s.getName().equals("job") && id.equals(s.getAttributes().get(JOB_ID))) {
                    return s;
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no job span for " + id);
    }

    /**
     * The denoiser's server span of a trace: it ends when the server side of the call closes, which the client may
     * hear before (one CI run found the job span and not yet this one).
     */
    private static SpanData denoiseServerSpan(String traceId) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            for (SpanData s : trace(traceId)) {
                if (s.getName().equals("sd.v1.Denoiser/Denoise")
                        && s.getKind() == io.opentelemetry.api.trace.SpanKind.SERVER) {
                    return s;
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no denoiser server span in " + trace(traceId).stream().map(SpanData::getName)
                .toList());
    }

    @Test
    void aRefusedRequestEndsItsJobSpanWithTheFailedCheck() {
        spans.reset();
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> DiffusionGrpc
                .newBlockingStub(orchestrator.channel).generate(GenerateRequest.newBuilder().setPrompt("x")
                        .setSteps(500).build()).next());
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
        SpanData job = spans.getFinishedSpanItems().stream().filter(s -> s.getName().equals("job")).findFirst()
                .orElseThrow();
        assertEquals("refused", job.getAttributes().get(STATE));
        assertEquals(StatusCode.ERROR, job.getStatus().getStatusCode());
        assertNull(job.getAttributes().get(JOB_ID), "no id: it was never accepted");
        SpanData validate = named(trace(job.getTraceId()), "validate");
        assertEquals(job.getSpanId(), validate.getParentSpanId());
        assertEquals(StatusCode.ERROR, validate.getStatus().getStatusCode());
        assertTrue(validate.getStatus().getDescription().contains("steps"), validate.getStatus().getDescription());
    }

    @Test
    void aJobCancelledWhileQueuedEndsItsQueueSpanAndRunsNoStage() throws Exception {
        var first = DiffusionGrpc.newBlockingStub(orchestrator.channel).generate(GenerateRequest.newBuilder()
                .setPrompt("a red circle").setSteps(40).build());
        String running = first.next().getAccepted().getJobId();
        Iterator<GenerateEvent> second = DiffusionGrpc.newBlockingStub(orchestrator.channel).generate(
                GenerateRequest.newBuilder().setPrompt("a blue square").setSteps(4).build());
        String queued = second.next().getAccepted().getJobId();
        orchestrator.engine.cancel(queued);
        assertThrows(StatusRuntimeException.class, () -> second.forEachRemaining(e -> { }));
        first.forEachRemaining(e -> { });

        SpanData cancelled = job(queued);
        assertEquals("cancelled", cancelled.getAttributes().get(STATE));
        assertEquals(StatusCode.UNSET, cancelled.getStatus().getStatusCode(), "a cancel is not an error");
        List<SpanData> its = trace(cancelled.getTraceId());
        assertTrue(named(its, "queue").hasEnded());
        assertTrue(its.stream().noneMatch(s -> List.of("encode", "denoise", "decode").contains(s.getName())),
                its.stream().map(SpanData::getName).toList().toString());

        SpanData completed = job(running);
        assertEquals("completed", completed.getAttributes().get(STATE));
        List<SpanData> trace = trace(completed.getTraceId());
        for (String stage : List.of("validate", "queue", "encode", "denoise", "decode")) {
            assertEquals(completed.getSpanId(), named(trace, stage).getParentSpanId(), stage);
        }
        SpanData denoiseServer = denoiseServerSpan(completed.getTraceId());
        assertEquals(40, denoiseServer.getEvents().stream().filter(e -> e.getName().equals("step")).count());
    }
}
