package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.CancelRequest;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.EvaluateEvent;
import org.sdserve.proto.v1.EvaluateRequest;
import org.sdserve.proto.v1.EvaluationResult;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.JobState;
import org.sdserve.proto.v1.WatchRequest;

/**
 * Distributed mode: each service its own process started from its packaged Quarkus application
 * (target/quarkus-app/quarkus-run.jar), on loopback ports, two denoiser replicas behind the orchestrator.
 * Compared with the embedded mode in this JVM: same request, same bytes.
 */
class DistributedGenerateIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));
    private static LocalCluster cluster;
    private static ManagedChannel orchestrator;
    private static Path denoiserA;
    private static Path denoiserB;

    @BeforeAll
    static void startProcesses() {
        cluster = LocalCluster.start(ROOT, DemoModel.path(), 2, Path.of("target", "it-logs"), Map.of(),
                Map.of("SD_VAE_EXTRACTOR_DIR", ROOT.resolve("models/scene-features").toAbsolutePath().toString()));
        denoiserA = cluster.logs("denoiser-svc").get(0);
        denoiserB = cluster.logs("denoiser-svc").get(1);
        orchestrator = NettyChannelBuilder.forAddress("localhost", cluster.orchestrator().port()).usePlaintext()
                .maxInboundMessageSize(64 << 20).build();
    }

    @AfterAll
    static void stopProcesses() {
        if (orchestrator != null) {
            orchestrator.shutdownNow();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void fourProcessesGiveTheSameBytesAsTheEmbeddedStack() {
        GenerateRequest req = GenerateRequest.newBuilder().setPrompt("a red circle on a blue background").setSeed(7)
                .build(); // defaults: 64x64, 25 DDIM steps, guidance 7.5
        Events distributed = Events.generate(orchestrator, req);
        byte[] embedded;
        try (EmbeddedStages stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT)) {
            try (InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, 1)) {
                ManagedChannel ch = o.channel;
                Events.generate(ch, req); // warm-up
                Events e = Events.generate(ch, req);
                embedded = e.png(0);
                System.out.println("embedded default generation: " + com.google.protobuf.TextFormat
                        .shortDebugString(e.of(GenerateEvent.EventCase.COMPLETED).get(0).getCompleted()));
                ch.shutdownNow();
            }
        }
        Events again = Events.generate(orchestrator, req);
        System.out.println("distributed default generation: " + com.google.protobuf.TextFormat
                .shortDebugString(again.of(GenerateEvent.EventCase.COMPLETED).get(0).getCompleted()));
        assertArrayEquals(embedded, distributed.png(0));
        assertArrayEquals(distributed.png(0), again.png(0));
    }

    /**
     * Evaluate over the processes (vae-svc started with SD_VAE_EXTRACTOR_DIR serves the Features service): the same
     * figures as the embedded stack's, whose VAE stage serves the extractor in-process.
     */
    @Test
    void evaluateAcrossProcessesGivesTheEmbeddedStacksFigures() {
        EvaluateRequest req = EvaluateRequest.newBuilder().setImages(16).setSteps(6).build();
        EvaluationResult distributed = result(orchestrator, req);
        EvaluationResult embedded;
        try (EmbeddedStages stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU,
                TorchGenerator.Kernel.AVX2, BatchSettings.DEFAULT, ROOT.resolve("models/scene-features"), 64 << 20,
                StageClients.Timeouts.DEFAULT);
             InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, 4)) {
            embedded = result(o.channel, req);
        }
        System.out.println("distributed evaluation: " + com.google.protobuf.TextFormat.shortDebugString(distributed));
        assertEquals(embedded.toBuilder().clearTotalMs().build(), distributed.toBuilder().clearTotalMs().build());
        assertTrue(distributed.getFid() > 0 && distributed.hasInceptionScore() && distributed.hasAdherence());
    }

    private static EvaluationResult result(io.grpc.Channel channel, EvaluateRequest req) {
        EvaluationResult r = null;
        var events = DiffusionGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.MINUTES).evaluate(req);
        while (events.hasNext()) {
            EvaluateEvent e = events.next();
            if (e.hasResult()) {
                r = e.getResult();
            }
        }
        return r;
    }

    @Test
    void callsAreSpreadOverTheDenoiserReplicas() throws Exception {
        for (int i = 0; i < 4; i++) {
            Events.generate(orchestrator, GenerateRequest.newBuilder().setPrompt("a white square on a red background")
                    .setSeed(i).setSteps(4).build());
        }
        Thread.sleep(200);
        assertTrue(Files.readString(denoiserA).contains("denoised 1 image(s), 4 steps"), "replica A got work");
        assertTrue(Files.readString(denoiserB).contains("denoised 1 image(s), 4 steps"), "replica B got work");
    }

    @Test
    void badRequestStatusCrossesProcesses() {
        StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
                () -> Events.generate(orchestrator, GenerateRequest.newBuilder().setPrompt("red ".repeat(90)).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
        assertTrue(e.getStatus().getDescription().startsWith("prompt is 90 tokens long"));
    }

    @Test
    void anOversizedMessageGetsResourceExhaustedAndTheServiceStaysUp() {
        StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
                () -> Events.generate(orchestrator, GenerateRequest.newBuilder().setPrompt("a red circle")
                        .setInitImage(com.google.protobuf.ByteString.copyFrom(new byte[65 << 20])).build()));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode(), e.getStatus().toString());
        assertTrue(e.getStatus().getDescription().contains("exceeds maximum size"), e.getStatus().getDescription());
        assertEquals(1, Events.generate(orchestrator, GenerateRequest.newBuilder().setPrompt("a red circle")
                .setSteps(2).build()).of(GenerateEvent.EventCase.IMAGE).size());
    }

    @Test
    void cancelByIdStopsTheRemoteDenoiserWithinOneStep() throws Exception {
        RecordedCall job = new RecordedCall();
        DiffusionGrpc.newStub(orchestrator).generate(GenerateRequest.newBuilder()
                .setPrompt("a green cross on a black background").setSeed(9).setSteps(200).setWidth(384).setHeight(384)
                .build(), job); // ~0.15 s a step here: the cancel outruns the loop
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (job.lastStep() < 3) {
            assertTrue(System.nanoTime() < until, "no third step within 60 s");
            Thread.sleep(5);
        }
        assertEquals(JobState.JOB_STATE_RUNNING, DiffusionGrpc.newBlockingStub(orchestrator)
                .withDeadlineAfter(10, TimeUnit.SECONDS).cancel(CancelRequest.newBuilder().setJobId(job.jobId())
                        .build()).getState());
        int atCancel = job.lastStep();
        Status end = job.closed.get(60, TimeUnit.SECONDS);
        assertEquals(Status.Code.CANCELLED, end.getCode());
        assertEquals("cancelled by Cancel while running", end.getDescription());
        Pattern p = Pattern.compile("denoise cancelled by the caller after step (\\d+)");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Integer step = null;
        while (step == null && System.nanoTime() < deadline) {
            for (Path log : List.of(denoiserA, denoiserB)) {
                Matcher m = p.matcher(Files.readString(log));
                if (m.find()) {
                    step = Integer.parseInt(m.group(1));
                }
            }
            Thread.sleep(100);
        }
        assertTrue(step != null, "no denoiser logged the cancellation");
        assertTrue(step >= atCancel && step <= atCancel + 1, "the remote denoiser stopped after step " + step
                + " for a cancel at step " + atCancel);
    }

    @Test
    void aJobWhoseStreamDroppedIsWatchedToItsEndOverTcp() throws Exception {
        GenerateRequest req = GenerateRequest.newBuilder().setPrompt("a blue circle on a yellow background")
                .setSeed(17).setSteps(30).setPreviewInterval(10).build();
        // at the first denoising progress (the denoiser reports a step only every progress-interval, 20 ms)
        RecordedCall dropped = RecordedCall.droppingWhen(e -> e.hasProgress()
                && e.getProgress().getStage() == org.sdserve.proto.v1.Stage.STAGE_DENOISING);
        DiffusionGrpc.newStub(orchestrator).generate(req, dropped);
        assertEquals(Status.Code.CANCELLED, dropped.closed.get(60, TimeUnit.SECONDS).getCode());
        List<GenerateEvent> rest = new ArrayList<>();
        DiffusionGrpc.newBlockingStub(orchestrator).withDeadlineAfter(60, TimeUnit.SECONDS).watch(WatchRequest
                .newBuilder().setJobId(dropped.jobId()).setAfterSeq(dropped.lastSeq()).build())
                .forEachRemaining(rest::add);
        assertTrue(rest.get(0).getSeq() > dropped.lastSeq());
        assertEquals(GenerateEvent.EventCase.COMPLETED, rest.get(rest.size() - 1).getEventCase());
        byte[] watched = rest.get(rest.size() - 2).getImage().getPng().toByteArray();
        assertArrayEquals(Events.generate(orchestrator, req).png(0), watched, "the job went on without its stream");
    }
}
