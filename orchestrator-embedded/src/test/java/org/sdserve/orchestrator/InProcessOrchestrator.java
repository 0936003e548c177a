package org.sdserve.orchestrator;

import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.orchestrator.core.EngineSettings;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.Limits;
import org.sdserve.orchestrator.core.RequestValidator;
import org.sdserve.orchestrator.core.Stages;
import org.sdserve.orchestrator.grpc.DiffusionService;

/** The Diffusion service on an in-process server over {@code stages}, and a channel to it; closes all three. */
final class InProcessOrchestrator implements AutoCloseable {
    final JobEngine engine;
    final ServiceHost host;
    final ManagedChannel channel;

    private InProcessOrchestrator(JobEngine engine, ServiceHost host, ManagedChannel channel) {
        this.engine = engine;
        this.host = host;
        this.channel = channel;
    }

    /** Unseeded requests get {@code seed}; a job whose stream goes stops at once (no detach grace). */
    static InProcessOrchestrator start(Stages stages, long seed, int slots, int queueDepth) {
        return start(stages, seed, EngineSettings.DEFAULT.withSlots(slots, queueDepth).withDetachGrace(Duration.ZERO));
    }

    static InProcessOrchestrator start(Stages stages, long seed, int slots) {
        return start(stages, seed, slots, EngineSettings.DEFAULT.queueDepth());
    }

    static InProcessOrchestrator start(Stages stages, long seed, EngineSettings settings) {
        JobEngine engine = new JobEngine(stages, new RequestValidator(Limits.DEFAULT, () -> seed), settings);
        String name = "orchestrator-" + UUID.randomUUID();
        ServiceHost host = ServiceHost.inProcess(name, 64 << 20, List.of(new DiffusionService(engine)));
        host.serving();
        return new InProcessOrchestrator(engine, host, InProcessChannelBuilder.forName(name)
                .maxInboundMessageSize(64 << 20).build());
    }

    @Override
    public void close() {
        channel.shutdownNow();
        host.close();
        engine.close();
    }
}
