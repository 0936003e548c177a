package org.sdserve.denoise.app;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.sdserve.common.grpc.RunningStage;
import org.sdserve.common.metrics.ReadinessCheck;
import org.sdserve.denoise.batch.StepBatcher;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.denoise.core.MemoryBudget;
import org.sdserve.denoise.grpc.DenoiserService;

/** The denoiser-svc process: loads the UNet and scheduler config, then serves the loop over gRPC. */
@Readiness
@ApplicationScoped
public class DenoiserServer implements HealthCheck {
    private static final System.Logger LOG = System.getLogger(DenoiserServer.class.getName());
    @Inject
    DenoiserConfig config;
    @Inject
    MeterRegistry registry;
    private volatile RunningStage stage;

    void start(@Observes StartupEvent event) {
        stage = RunningStage.start("denoiser", config,
                dir -> measured(budgeted(Denoiser.load(dir, config.execution(), config.noiseKernel(),
                        config.batch().settings()))),
                denoiser -> List.of(new DenoiserService(denoiser, config.progressInterval())));
    }

    /**
     * The denoiser's metrics (Prometheus names): sd_unet_call_duration_seconds (histogram) and sd_unet_call_rows
     * (rows per session.run: how well step-level batching merges jobs), sd_denoise_steps_total (steps run, over all
     * jobs: rate() is steps per second), sd_denoiser_rows_in_flight (rows of the jobs being denoised: the load an
     * autoscaler reads), sd_denoiser_memory_budget_bytes.
     */
    private Denoiser measured(Denoiser d) {
        Timer calls = Timer.builder("sd.unet.call.duration").description("UNet session.run calls")
                .publishPercentileHistogram().register(registry);
        DistributionSummary rows = DistributionSummary.builder("sd.unet.call.rows")
                .description("rows per UNet call (2 per guided image; more when jobs share a call)")
                .publishPercentileHistogram().maximumExpectedValue(64.0).register(registry);
        d.unet().observe((n, nanos) -> {
            calls.record(nanos, TimeUnit.NANOSECONDS);
            rows.record(n);
        });
        FunctionCounter.builder("sd.denoise.steps", d, Denoiser::stepsRun).description("denoising steps run, all jobs")
                .register(registry);
        d.batcher().ifPresent(b -> Gauge.builder("sd.denoiser.rows.in.flight", b, StepBatcher::rowsInFlight)
                .description("UNet rows of the jobs being denoised now").register(registry));
        Gauge.builder("sd.denoiser.memory.budget", d, x -> x.memory() == null ? 0 : x.memory().budget())
                .baseUnit("bytes").description("activation memory this replica admits jobs against (0 = off)")
                .register(registry);
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
