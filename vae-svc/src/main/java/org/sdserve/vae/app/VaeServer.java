package org.sdserve.vae.app;

import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import io.opentelemetry.api.OpenTelemetry;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;
import org.sdserve.common.trace.Tracing;
import org.sdserve.common.grpc.RunningStage;
import org.sdserve.common.metrics.ReadinessCheck;

/**
 * The vae-svc process: loads the VAE decoder (and encoder), and the feature extractor if one is configured, then
 * serves them over gRPC.
 */
@Readiness
@ApplicationScoped
public class VaeServer implements HealthCheck {
    @Inject
    OpenTelemetry openTelemetry; // Quarkus'; exports only with quarkus.otel.sdk.disabled=false
    @ConfigProperty(name = "quarkus.otel.sdk.disabled")
    boolean otelDisabled;
    @Inject
    VaeConfig config;
    private volatile RunningStage stage;

    void start(@Observes StartupEvent event) {
        Tracing.use(openTelemetry, !otelDisabled); // before the servers and channels take its interceptors
        stage = RunningStage.start("vae", config, dir -> VaeModels.load(dir, config.extractorDir(),
                config.execution()), models -> models.services(config.noiseKernel()));
    }

    void stop(@Observes ShutdownEvent event) {
        if (stage != null) {
            stage.close();
        }
    }

    /** Ready while its gRPC health says SERVING (the model loaded and checked; not draining). */
    @Override
    public HealthCheckResponse call() {
        RunningStage s = stage;
        return ReadinessCheck.of("vae", s == null ? "starting" : s.notServingReason());
    }
}
