package org.sdserve.orchestrator.app;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.sdserve.orchestrator.core.Job;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.JobObserver;

/**
 * The orchestrator's job metrics (Micrometer; Prometheus names in brackets):
 * {@code sd.jobs.waiting} [sd_jobs_waiting] and {@code sd.jobs.running} [sd_jobs_running] gauges (the queue depth an
 * autoscaler reads), {@code sd.job.queue.wait} [sd_job_queue_wait_seconds] a timer of the time from accepted to a
 * slot, {@code sd.job.stage.duration} [sd_job_stage_duration_seconds{stage}] per stage of completed jobs,
 * {@code sd.jobs.ended} [sd_jobs_ended_total{state}] and {@code sd.images.generated} [sd_images_generated_total].
 */
final class JobMetrics implements JobObserver {
    private final MeterRegistry registry;
    private final Timer queueWait;
    private final Counter images;

    private JobMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.queueWait = Timer.builder("sd.job.queue.wait").description("time from accepted to a job slot")
                .publishPercentileHistogram().maximumExpectedValue(Duration.ofMinutes(10)).register(registry);
        this.images = Counter.builder("sd.images.generated").description("images of completed jobs")
                .register(registry);
    }

    static void register(MeterRegistry registry, JobEngine engine) {
        Gauge.builder("sd.jobs.waiting", engine, JobEngine::waitingCount).description("jobs waiting for a slot")
                .register(registry);
        Gauge.builder("sd.jobs.running", engine, JobEngine::runningCount).description("jobs holding a slot")
                .register(registry);
        engine.observe(new JobMetrics(registry));
    }

    @Override
    public void started(long queuedNanos) {
        queueWait.record(queuedNanos, TimeUnit.NANOSECONDS);
    }

    @Override
    public void ended(Job.State state, Map<String, Long> stageMs, int images) {
        Counter.builder("sd.jobs.ended").description("jobs ended, by final state")
                .tag("state", state.name().toLowerCase(Locale.ROOT)).register(registry).increment();
        stageMs.forEach((stage, ms) -> Timer.builder("sd.job.stage.duration").description("wall time per stage of "
                + "completed jobs").tag("stage", stage).publishPercentileHistogram()
                .maximumExpectedValue(Duration.ofMinutes(10)).register(registry).record(ms, TimeUnit.MILLISECONDS));
        this.images.increment(images);
    }
}
