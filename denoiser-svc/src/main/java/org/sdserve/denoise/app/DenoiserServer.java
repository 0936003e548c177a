package org.sdserve.denoise.app;

import io.micrometer.core.instrument.MeterRegistry;
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
import java.util.List;
import org.sdserve.common.trace.Tracing;
import org.sdserve.common.grpc.RunningStage;
import org.sdserve.common.metrics.ReadinessCheck;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.denoise.core.MemoryBudget;
import org.sdserve.denoise.grpc.DenoiserService;

/** The denoiser-svc process: loads the UNet and scheduler config, then serves the loop over gRPC. */
@Readiness
@ApplicationScoped
public class DenoiserServer implements HealthCheck {
    private static final System.Logger LOG = System.getLogger(DenoiserServer.class.getName());
    @Inject
    OpenTelemetry openTelemetry; // Quarkus'; exports only with quarkus.otel.sdk.disabled=false
    @ConfigProperty(name = "quarkus.otel.sdk.disabled")
    boolean otelDisabled;
    @Inject
    DenoiserConfig config;
    @Inject
    MeterRegistry registry;
    private volatile RunningStage stage;

    void start(@Observes StartupEvent event) {
        Tracing.use(openTelemetry, !otelDisabled); // before the servers and channels take its interceptors
        stage = RunningStage.start("denoiser", config,
                dir -> measured(budgeted(Denoiser.load(dir, config.execution(), config.noiseKernel(),
                        config.batch().settings()))),
                denoiser -> List.of(new DenoiserService(denoiser, config.progressInterval())));
    }

    private Denoiser measured(Denoiser d) {
        DenoiserMetrics.register(registry, d);
        return d;
    }

    private Denoiser budgeted(Denoiser d) {
        try {
            MemoryBudget m = d.budgetMemory(config.memoryBudget(), config.execution().wantsGpu());
            LOG.log(System.Logger.Level.INFO, m.enabled() ? String.format("memory budget %s; a guided image costs "
                    + "%s at the default size, %s at 1024x1024", MemoryBudget.size(m.budget()),
                    MemoryBudget.size(m.bytes(2, (long) d.geometry().defaultWidth() * d.geometry().defaultHeight()
                            / d.geometry().vaeFactor() / d.geometry().vaeFactor())),
                    MemoryBudget.size(m.bytes(2, 128L * 128))) : "memory budget: off (sd.denoiser.memory-budget="
                    + config.memoryBudget() + ", device " + config.execution().device() + ")");
            return d;
        } catch (RuntimeException e) {
            d.close();
            throw e;
        }
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
        return ReadinessCheck.of("denoiser", s == null ? "starting" : s.notServingReason());
    }
}
