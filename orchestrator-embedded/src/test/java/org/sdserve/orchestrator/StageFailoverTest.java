package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.grpc.StageChannels;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Every stage with two replicas, one of which is not there (an in-process name nobody serves): calls that meet it
 * get UNAVAILABLE, are made again on the live replica, and the dead one leaves the rotation; with health watched
 * and a stage without any serving replica, jobs are refused before they spend compute. Real gRPC throughout.
 */
class StageFailoverTest {
    private static EmbeddedStages stages;

    @BeforeAll
    static void start() {
        stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
    }

    @AfterAll
    static void stop() {
        stages.close();
    }

    /** Clients whose every stage lists a replica that does not exist first, then the live one. */
    private static StageClients halfDead() {
        String nowhere = "nowhere-" + UUID.randomUUID();
        return new StageClients(
                StageChannels.inProcess("text-encoder", List.of(nowhere, stages.serverName("text")), 64 << 20),
                StageChannels.inProcess("denoiser", List.of(nowhere, stages.serverName("denoiser")), 64 << 20),
                StageChannels.inProcess("vae", List.of(nowhere, stages.serverName("vae")), 64 << 20),
                StageClients.Timeouts.DEFAULT);
    }

    private static GenerateRequest request(long seed) {
        return GenerateRequest.newBuilder().setPrompt("a purple cross on an orange background").setSeed(seed)
                .setSteps(5).build();
    }

    @Test
    void jobsGoOnWhenOneReplicaOfEveryStageIsMissing() {
        byte[] reference;
        try (InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 1L, 1)) {
            reference = Events.generate(o.channel, request(4)).png(0);
        }
        try (StageClients clients = halfDead();
             InProcessOrchestrator o = InProcessOrchestrator.start(clients, 1L, 1)) {
            for (int i = 0; i < 4; i++) { // each stage's rotation starts at the missing replica at least once
                assertArrayEquals(reference, Events.generate(o.channel, request(4)).png(0), "job " + i);
            }
        }
    }

    @Test
    void withHealthWatchedAStageWithoutAServingReplicaRefusesJobsBeforeAnyCompute() throws Exception {
        String nowhere = "nowhere-" + UUID.randomUUID();
        try (StageClients clients = new StageClients(
                StageChannels.inProcess("text-encoder", stages.serverName("text"), 64 << 20),
                StageChannels.inProcess("denoiser", stages.serverName("denoiser"), 64 << 20),
                StageChannels.inProcess("vae", nowhere, 64 << 20), StageClients.Timeouts.DEFAULT);
             InProcessOrchestrator o = InProcessOrchestrator.start(clients, 1L, 1)) {
            clients.watchHealth(Duration.ofMillis(200), missing -> { });
            long until = System.nanoTime() + 10_000_000_000L;
            while (clients.unavailable() == null || !clients.unavailable().startsWith("vae")
                    || clients.unavailable().contains("not checked yet")) {
                assertTrue(System.nanoTime() < until, "health never settled: " + clients.unavailable());
                Thread.sleep(20);
            }
            long steps = stages.denoiser().stepsRun();
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                    () -> Events.generate(o.channel, request(5)));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().startsWith("cannot run jobs now: vae has no serving replica"),
                    e.getStatus().getDescription());
            assertEquals(steps, stages.denoiser().stepsRun(), "no denoising for a job that could not be decoded");
        }
    }
}
