package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.local.LocalCluster;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * SIGTERM with a job in flight, on the packaged processes: the orchestrator drains (the running job completes, the
 * process exits), and so does a denoiser (its Denoise call completes before it exits, no crash in ONNX Runtime).
 */
class GracefulDrainIT {
    private static final Path ROOT = Path.of(System.getProperty("sd.root", ".."));
    private static final GenerateRequest LONG = GenerateRequest.newBuilder().setPrompt("a red circle on a blue "
            + "background").setSeed(5).setSteps(80).setWidth(256).setHeight(256).build(); // ~4 s here

    /** Starts the long job, waits for its first step, sends SIGTERM to {@code victim}; the job's end. */
    private static RecordedCall jobWhileTerminating(LocalCluster cluster, LocalCluster.Service victim)
            throws Exception {
        ManagedChannel ch = NettyChannelBuilder.forAddress("localhost", cluster.orchestrator().port()).usePlaintext()
                .maxInboundMessageSize(64 << 20).build();
        try {
            RecordedCall job = new RecordedCall();
            DiffusionGrpc.newStub(ch).generate(LONG, job);
            job.progressed.get(60, TimeUnit.SECONDS);
            victim.process().destroy(); // SIGTERM
            job.closed.get(60, TimeUnit.SECONDS);
            assertTrue(victim.process().waitFor(60, TimeUnit.SECONDS), victim.module() + " did not exit");
            return job;
        } finally {
            ch.shutdownNow();
        }
    }

    @Test
    void theOrchestratorFinishesItsRunningJobBeforeItExits() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(ROOT, DemoModel.path(), 1, Path.of("target", "it-logs"),
                Map.of())) {
            RecordedCall job = jobWhileTerminating(cluster, cluster.orchestrator());
            assertEquals(Status.Code.OK, job.closed.get().getCode(), "the job in flight completed");
            assertEquals(1, job.of(GenerateEvent.EventCase.IMAGE).size());
            assertTrue(Files.readString(cluster.orchestrator().log()).contains("draining: 0 waiting jobs refused, 1 "
                    + "running"));
        }
    }

    @Test
    void aDenoiserFinishesTheCallInFlightBeforeItExits() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(ROOT, DemoModel.path(), 1, Path.of("target", "it-logs"),
                Map.of())) {
            LocalCluster.Service denoiser = cluster.services().stream()
                    .filter(s -> s.module().equals("denoiser-svc")).findFirst().orElseThrow();
            RecordedCall job = jobWhileTerminating(cluster, denoiser);
            assertEquals(Status.Code.OK, job.closed.get().getCode(), "the job in flight completed");
            String log = Files.readString(denoiser.log());
            assertTrue(log.contains("denoised 1 image(s), 80 steps"), log);
            assertTrue(!log.contains("SIGSEGV"), "ONNX Runtime crashed at shutdown:\n" + log);
            int status = denoiser.process().exitValue();
            assertTrue(status == 0 || status == 143, "exit status " + status + " (a crash is 134)");
        }
    }
}
