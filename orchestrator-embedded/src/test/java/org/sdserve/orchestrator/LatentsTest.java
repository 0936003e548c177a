package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.DecodeRequest;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.LatentSnapshot;

/**
 * Latents on the public stream (GenerateRequest.latents_interval): snapshots of the working latents at every
 * multiple of the interval (here 3, beside the default checkpoint interval of 5, so the call checkpoints at their
 * gcd, every step), then the final latents, which the VAE decodes into exactly the job's images.
 */
class LatentsTest {
    private static EmbeddedStages stages;
    private static InProcessOrchestrator orchestrator;

    @BeforeAll
    static void start() {
        stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
        orchestrator = InProcessOrchestrator.start(stages.clients(), 1L, 2);
    }

    @AfterAll
    static void stop() {
        orchestrator.close();
        stages.close();
    }

    @Test
    void snapshotsEveryIntervalThenFinalLatentsThatDecodeToTheImages() {
        Events ev = Events.generate(orchestrator.channel, GenerateRequest.newBuilder()
                .setPrompt("a large blue circle on a yellow background").setSeed(9).setSteps(10).setNumImages(2)
                .setWidth(64).setHeight(96).setScheduler("dpmpp_2m").setLatentsInterval(3).build());
        List<LatentSnapshot> snapshots = ev.all().stream().filter(GenerateEvent::hasLatents)
                .map(GenerateEvent::getLatents).toList();
        assertEquals(List.of(3, 6, 9, 10), snapshots.stream().map(LatentSnapshot::getStep).toList());
        assertEquals(List.of(false, false, false, true), snapshots.stream().map(LatentSnapshot::getFinal).toList());
        for (LatentSnapshot s : snapshots) {
            assertEquals(List.of(2L, 4L, 12L, 8L), s.getLatents().getShapeList(), "[images, 4, h/8, w/8]");
            assertEquals(2 * 4 * 12 * 8 * 4, s.getLatents().getData().size());
        }
        assertFalse(snapshots.get(0).getLatents().getData().equals(snapshots.get(3).getLatents().getData()));
        // the final latents are what was decoded: the VAE turns them into the very PNGs of the job
        var decoded = stages.clients().decode(DecodeRequest.newBuilder().setLatents(snapshots.get(3).getLatents())
                .build());
        assertArrayEquals(ev.png(0), decoded.getPng(0).toByteArray());
        assertArrayEquals(ev.png(1), decoded.getPng(1).toByteArray());
        // the final snapshot comes before the images
        int last = ev.all().indexOf(ev.all().stream().filter(e -> e.hasLatents() && e.getLatents().getFinal())
                .findFirst().orElseThrow());
        assertTrue(ev.all().subList(last, ev.all().size()).stream().anyMatch(GenerateEvent::hasImage));
    }

    @Test
    void withoutAnIntervalThereAreNoLatentsAndAnIntervalBeyondTheStepsIsRefused() {
        Events ev = Events.generate(orchestrator.channel, GenerateRequest.newBuilder().setPrompt("a red circle")
                .setSeed(1).setSteps(4).build());
        assertTrue(ev.all().stream().noneMatch(GenerateEvent::hasLatents));
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> Events.generate(
                orchestrator.channel, GenerateRequest.newBuilder().setPrompt("a red circle").setSteps(4)
                        .setLatentsInterval(5).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
        assertEquals("latents_interval must be in [0, steps=4], got 5", e.getStatus().getDescription());
    }
}
