package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Distributed mode with a replica lost: the orchestrator checks its stages' health (every 0.5 s here), stops
 * sending work to a denoiser replica that died, and reports NOT_SERVING once a stage has no replica left.
 */
class ReplicaFailoverIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));

    private static ServingStatus health(ManagedChannel ch) {
        try {
            return HealthGrpc.newBlockingStub(ch).withDeadlineAfter(2, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance()).getStatus();
        } catch (StatusRuntimeException e) {
            return ServingStatus.UNKNOWN;
        }
    }

    private static void awaitLog(Path log, String text) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!Files.readString(log).contains(text)) {
            assertTrue(System.nanoTime() < deadline, "no \"" + text + "\" in " + log);
            Thread.sleep(50);
        }
    }

    private static LocalCluster.Service kill(LocalCluster.Service s) throws InterruptedException {
        s.process().destroyForcibly();
        assertTrue(s.process().waitFor(15, TimeUnit.SECONDS));
        return s;
    }

    @Test
    void aDeadDenoiserReplicaIsSkippedAndNoReplicaLeftMeansNotServing() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(ROOT, DemoModel.path(), 2, Path.of("target", "it-logs"),
                Map.of("SD_ORCHESTRATOR_HEALTH_CHECK_INTERVAL", "PT0.5S"))) {
            ManagedChannel ch = NettyChannelBuilder.forAddress("localhost", cluster.orchestrator().port())
                    .usePlaintext().maxInboundMessageSize(64 << 20).build();
            try {
                List<LocalCluster.Service> denoisers = cluster.services().stream()
                        .filter(s -> s.module().equals("denoiser-svc")).toList();
                Path log = cluster.orchestrator().log();
                for (LocalCluster.Service d : denoisers) {
                    awaitLog(log, "denoiser replica localhost:" + d.port() + ": SERVING");
                }
                assertEquals(ServingStatus.SERVING, health(ch));

                LocalCluster.Service b = kill(denoisers.get(1));
                awaitLog(log, "denoiser replica localhost:" + b.port() + ": not serving");
                for (int i = 0; i < 4; i++) { // round-robin would have sent two of these to the dead replica
                    Events e = Events.generate(ch, GenerateRequest.newBuilder().setPrompt("a red circle")
                            .setSeed(i).setSteps(2).build());
                    assertEquals(1, e.of(GenerateEvent.EventCase.IMAGE).size(), "job " + i);
                }
                assertEquals(ServingStatus.SERVING, health(ch), "one denoiser replica is enough to serve");

                LocalCluster.Service a = kill(denoisers.get(0));
                awaitLog(log, "denoiser replica localhost:" + a.port() + ": not serving");
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (health(ch) != ServingStatus.NOT_SERVING) {
                    assertTrue(System.nanoTime() < deadline, "the orchestrator still says " + health(ch));
                    Thread.sleep(50);
                }
                StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> Events.generate(ch,
                        GenerateRequest.newBuilder().setPrompt("a red circle").setSteps(2).build()));
                assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
                // refused before any compute, with the stage and its replicas named
                assertTrue(e.getStatus().getDescription().startsWith("cannot run jobs now: denoiser has no serving "
                        + "replica (localhost:"), e.getStatus().getDescription());
            } finally {
                ch.shutdownNow();
            }
        }
    }
}
