package org.sdserve.common.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Round-robin over replicas with health checks, on real servers on loopback (health service only). */
class StageChannelsTest {
    private ScheduledExecutorService scheduler;

    @BeforeEach
    void scheduler() {
        scheduler = Executors.newSingleThreadScheduledExecutor();
    }

    @AfterEach
    void stop() {
        scheduler.shutdownNow();
    }

    private static int closedPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort(); // nothing listens there once closed
        }
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting until " + what);
            Thread.sleep(20);
        }
    }

    /** Answers a health check on the channel next() hands out: SERVING, or the call's failure. */
    private static String callNext(StageChannels c) {
        Channel ch = c.next();
        try {
            ServingStatus s = HealthGrpc.newBlockingStub(ch).withDeadlineAfter(2, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance()).getStatus();
            return s.name();
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode().name();
        }
    }

    /** grpc-netty's "UNKNOWN: channel closed" (a write to a connection the replica closed) is a lost replica. */
    @Test
    void aClosedChannelIsTheReplicaGoneNotAnUnknownError() {
        Status closed = StageChannels.transportLost(Status.UNKNOWN.withDescription("channel closed")
                .withCause(new java.nio.channels.ClosedChannelException()));
        assertEquals(Status.Code.UNAVAILABLE, closed.getCode());
        assertEquals(Status.Code.UNAVAILABLE, StageChannels.transportLost(Status.UNKNOWN
                .withDescription("channel closed")).getCode(), "relayed without its cause");
        assertEquals(Status.Code.UNKNOWN, StageChannels.transportLost(Status.UNKNOWN.withDescription("boom"))
                .getCode());
        assertEquals(Status.Code.INTERNAL, StageChannels.transportLost(Status.INTERNAL
                .withDescription("channel closed")).getCode());
    }

    @Test
    void replicasThatDoNotServeAreSkippedUntilTheyServe() throws Exception {
        int dead = closedPort();
        try (ServiceHost up = ServiceHost.tcp("localhost", 0, 1 << 20, List.of());
             ServiceHost loading = ServiceHost.tcp("localhost", 0, 1 << 20, List.of());
             StageChannels c = StageChannels.tcp("denoiser", List.of("localhost:" + up.port(),
                     "localhost:" + dead, "localhost:" + loading.port()), 1 << 20)) {
            up.serving(); // "loading" stays NOT_SERVING, as a stage does while its models load
            AtomicInteger changes = new AtomicInteger();
            c.watchHealth(scheduler, Duration.ofMillis(500), changes::incrementAndGet);
            await(() -> changes.get() >= 3, "all three replicas were checked");
            assertTrue(c.serving());
            for (int i = 0; i < 9; i++) {
                assertEquals("SERVING", callNext(c), "call " + i + " went to a replica that does not serve");
            }
            assertTrue(c.describe().contains(":" + dead + " no answer within 500 ms"), c.describe());
            assertTrue(c.describe().contains(":" + loading.port() + " NOT_SERVING"), c.describe());

            loading.serving();
            await(() -> changes.get() >= 4, "the change was reported");
            assertTrue(c.describe().contains(":" + loading.port() + " SERVING"), c.describe());
            assertEquals("SERVING", callNext(c));
        }
    }

    @Test
    void withNoReplicaServingCallsFailWithTheStageAndReplicaNamed() throws Exception {
        int dead = closedPort();
        try (StageChannels c = StageChannels.tcp("vae", List.of("localhost:" + dead), 1 << 20)) {
            c.watchHealth(scheduler, Duration.ofMillis(500), () -> { });
            await(() -> c.describe().contains("no answer within 500 ms"), "the dead replica was checked");
            assertFalse(c.serving());
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> HealthGrpc
                    .newBlockingStub(c.next()).withDeadlineAfter(2, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance()));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().startsWith("vae replica localhost:" + dead + " is unavailable"),
                    e.getStatus().getDescription());
        }
    }

    @Test
    void withoutHealthChecksEachReplicaTakesItsTurnUntilACallFailsThenItLeavesTheRotation() throws Exception {
        try (ServiceHost up = ServiceHost.tcp("localhost", 0, 1 << 20, List.of());
             StageChannels c = StageChannels.tcp("text-encoder", List.of("localhost:" + up.port(),
                     "localhost:" + closedPort()), 1 << 20)) {
            up.serving();
            assertEquals("SERVING", callNext(c));
            assertEquals("UNAVAILABLE", callNext(c));
            for (int i = 0; i < 4; i++) {
                assertEquals("SERVING", callNext(c), "call " + i + " after the failure went to the failed replica");
            }
            assertFalse(c.serving(), "nothing checked yet");
        }
    }
}
