package org.sdserve.orchestrator.app;

import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.grpc.StageChannels;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.orchestrator.core.Limits;
import org.sdserve.orchestrator.core.RequestValidator;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.DiffusionService;
import org.sdserve.orchestrator.grpc.StageClients;

/** The orchestrator process: the public Diffusion service over stages that are embedded or remote. */
@ApplicationScoped
public class OrchestratorServer {
    private static final System.Logger LOG = System.getLogger(OrchestratorServer.class.getName());
    @Inject
    OrchestratorConfig config;
    private EmbeddedStages embedded;
    private StageClients clients;
    private ServiceHost host;

    void start(@Observes StartupEvent event) {
        if (config.healthCheckInterval().isNegative() || config.healthCheckInterval().isZero()) {
            throw new IllegalArgumentException("sd.orchestrator.health-check-interval must be positive, got "
                    + config.healthCheckInterval());
        }
        StageClients.Timeouts timeouts = new StageClients.Timeouts(Duration.ofSeconds(10), Duration.ofSeconds(60),
                config.denoiseTimeout(), Duration.ofMinutes(2));
        if (config.embedded()) {
            embedded = EmbeddedStages.start(ModelDirectory.open(Path.of(config.modelDir())), config.execution(),
                    config.noiseKernel(), config.maxMessageBytes(), timeouts);
            clients = embedded.clients();
        } else {
            int max = config.maxMessageBytes();
            clients = new StageClients(StageChannels.tcp("text-encoder", config.textEncoder(), max),
                    StageChannels.tcp("denoiser", config.denoiser(), max),
                    StageChannels.tcp("vae", config.vae(), max), timeouts);
            LOG.log(System.Logger.Level.INFO, "stages: text-encoder {0}, denoiser {1}, vae {2}",
                    config.textEncoder(), config.denoiser(), config.vae());
        }
        SecureRandom random = new SecureRandom();
        RequestValidator validator = new RequestValidator(
                new Limits(config.maxSide(), config.maxSteps(), config.maxImages(), config.maxPixels()),
                () -> random.nextLong() & 0xffffffffL);
        host = ServiceHost.tcp(config.host(), config.port(), config.maxMessageBytes(),
                List.of(new DiffusionService(clients, validator, config.maxConcurrentJobs(),
                        config.queueDepth())));
        if (config.embedded()) {
            host.serving();
        } else {
            ServiceHost h = host; // SERVING while every stage has a serving replica
            clients.watchHealth(config.healthCheckInterval(), missing -> {
                if (missing == null) {
                    h.serving();
                } else {
                    h.notServing(missing);
                }
            });
        }
    }

    void stop(@Observes ShutdownEvent event) {
        if (host != null) {
            host.close();
        }
        if (embedded != null) {
            embedded.close();
        } else if (clients != null) {
            clients.close();
        }
    }
}
