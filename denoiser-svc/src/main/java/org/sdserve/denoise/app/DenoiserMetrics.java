package org.sdserve.denoise.app;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.TimeUnit;
import org.sdserve.denoise.batch.StepBatcher;
import org.sdserve.denoise.core.Denoiser;

/** A denoiser's meters, for its own process (DenoiserServer) and for embedded mode (the orchestrator's process). */
public final class DenoiserMetrics {
    private DenoiserMetrics() {
    }

    /**
     * The denoiser's metrics (Prometheus names): sd_unet_call_duration_seconds (histogram) and sd_unet_call_rows
     * (rows per session.run: how well step-level batching merges jobs), sd_denoise_steps_total (steps run, over all
     * jobs: rate() is steps per second), sd_denoiser_rows_in_flight (rows of the jobs being denoised: the load an
     * autoscaler reads), sd_denoiser_memory_budget_bytes.
     */
    public static void register(MeterRegistry registry, Denoiser d) {
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
    }
}
