package org.sdserve.denoise.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.proto.v1.DenoiseEvent;
import org.sdserve.proto.v1.DenoiseRequest;
import org.sdserve.proto.v1.DenoiserGrpc;

/** The Denoise stream over real gRPC (in-process transport) on the demo model: which steps report progress. */
class DenoiserServiceTest {
    private static Denoiser denoiser;

    @BeforeAll
    static void load() {
        denoiser = Denoiser.load(DemoModel.directory(), ExecutionOptions.CPU);
    }

    @AfterAll
    static void close() {
        denoiser.close();
    }

    /** The steps that reported progress, and the final latents' bytes. */
    private record Run(List<Integer> steps, com.google.protobuf.ByteString latents) {
    }

    private static Run denoise(Duration progressInterval) {
        String name = "denoiser-" + UUID.randomUUID();
        try (ServiceHost host = ServiceHost.inProcess(name, 64 << 20,
                List.of(new DenoiserService(denoiser, progressInterval)))) {
            ManagedChannel ch = InProcessChannelBuilder.forName(name).build();
            DenoiseRequest request = DenoiseRequest.newBuilder()
                    .setPromptEmbeds(TensorCodec.encode(DemoModel.pattern(new long[] {1, 77, 128}, 0.01)))
                    .setNegativeEmbeds(TensorCodec.encode(DemoModel.pattern(new long[] {1, 77, 128}, 0.02)))
                    .setWidth(64).setHeight(64).setSteps(12).setGuidanceScale(7.5f).setScheduler("ddim")
                    .addSeeds(3).setPreviewInterval(5).build();
            List<Integer> steps = new ArrayList<>();
            com.google.protobuf.ByteString latents = null;
            for (var it = DenoiserGrpc.newBlockingStub(ch).denoise(request); it.hasNext(); ) {
                DenoiseEvent e = it.next();
                if (e.hasProgress()) {
                    steps.add(e.getProgress().getStep());
                } else {
                    latents = e.getLatents().getLatents().getData();
                }
            }
            ch.shutdownNow();
            return new Run(steps, latents);
        }
    }

    @Test
    void everyStepReportsWithoutAnInterval() {
        assertEquals(List.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), denoise(Duration.ZERO).steps());
    }

    @Test
    void withAnIntervalOnlyTheFirstTheLastAndThePreviewStepsReportAndTheLatentsAreTheSame() {
        Run sparse = denoise(Duration.ofHours(1));
        assertEquals(List.of(1, 5, 10, 12), sparse.steps());
        assertEquals(denoise(Duration.ZERO).latents(), sparse.latents());
    }

    /** Every event of one Denoise call. */
    private static List<DenoiseEvent> events(DenoiseRequest request) {
        String name = "denoiser-" + UUID.randomUUID();
        try (ServiceHost host = ServiceHost.inProcess(name, 64 << 20, List.of(new DenoiserService(denoiser)))) {
            ManagedChannel ch = InProcessChannelBuilder.forName(name).build();
            List<DenoiseEvent> out = new ArrayList<>();
            DenoiserGrpc.newBlockingStub(ch).denoise(request).forEachRemaining(out::add);
            ch.shutdownNow();
            return out;
        }
    }

    @Test
    void checkpointsComeEveryIntervalCallsAndAResumedCallEndsWithTheSameLatentBytes() {
        DenoiseRequest request = DenoiseRequest.newBuilder()
                .setPromptEmbeds(TensorCodec.encode(DemoModel.pattern(new long[] {1, 77, 128}, 0.01)))
                .setNegativeEmbeds(TensorCodec.encode(DemoModel.pattern(new long[] {1, 77, 128}, 0.02)))
                .setWidth(64).setHeight(64).setSteps(12).setGuidanceScale(7.5f).setScheduler("pndm")
                .addSeeds(3).addSeeds(4).setCheckpointInterval(4).build();
        List<DenoiseEvent> whole = events(request);
        List<org.sdserve.proto.v1.Checkpoint> checkpoints = whole.stream().filter(DenoiseEvent::hasCheckpoint)
                .map(DenoiseEvent::getCheckpoint).toList();
        assertEquals(List.of(4, 8, 12), checkpoints.stream().map(c -> c.getStep()).toList()); // pndm: 13 calls
        assertEquals(List.of(4L, 2L * 4 * 8 * 8), checkpoints.get(1).getSchedulerHistoryOrThrow("ets")
                .getShapeList());
        DenoiseEvent last = whole.get(whole.size() - 1);
        for (org.sdserve.proto.v1.Checkpoint c : checkpoints) {
            List<DenoiseEvent> rest = events(request.toBuilder().setResume(c).setCheckpointInterval(0).build());
            assertEquals(c.getStep() + 1, rest.get(0).getProgress().getStep());
            assertEquals(last.getLatents(), rest.get(rest.size() - 1).getLatents(), "from step " + c.getStep());
        }
    }

    @Test
    void aNegativeIntervalIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new DenoiserService(denoiser, Duration.ofMillis(-1)));
    }
}
