package org.sdserve.orchestrator.core;

import java.time.Duration;

/**
 * How the job engine admits, runs and keeps jobs.
 *
 * @param maxConcurrentJobs jobs running at once, each on its own worker thread (never a transport thread)
 * @param queueDepth jobs that may wait for a slot; beyond them, RESOURCE_EXHAUSTED
 * @param detachGrace how long a job with no stream following it goes on before it is cancelled (its client may
 *     re-attach with Watch meanwhile); zero cancels it as soon as its last stream goes
 * @param retainFinished how long a finished job (its images, its end) stays watchable
 * @param retainedJobs most finished jobs kept at once
 * @param retainedBytes most PNG bytes the finished jobs kept may hold, all together
 * @param checkpointInterval the denoiser checkpoints each job every this many UNet calls (0 = never); a job whose
 *     Denoise stream breaks continues on another replica from its last checkpoint
 * @param denoiseAttempts most Denoise calls one job may make: its first, then one per broken stream
 */
public record EngineSettings(int maxConcurrentJobs, int queueDepth, Duration detachGrace, Duration retainFinished,
                             int retainedJobs, long retainedBytes, int checkpointInterval, int denoiseAttempts) {
    public static final EngineSettings DEFAULT = new EngineSettings(4, 64, Duration.ofSeconds(10),
            Duration.ofMinutes(2), 256, 256L << 20, 5, 4);

    public EngineSettings {
        if (maxConcurrentJobs < 1 || queueDepth < 0 || retainedJobs < 0 || retainedBytes < 0) {
            throw new IllegalArgumentException("max-concurrent-jobs must be >= 1 and queue-depth, retained-jobs, "
                    + "retained-bytes >= 0, got " + maxConcurrentJobs + ", " + queueDepth + ", " + retainedJobs
                    + ", " + retainedBytes);
        }
        if (checkpointInterval < 0 || denoiseAttempts < 1) {
            throw new IllegalArgumentException("checkpoint-interval must be >= 0 and denoise-attempts >= 1, got "
                    + checkpointInterval + " and " + denoiseAttempts);
        }
        if (detachGrace.isNegative() || retainFinished.isNegative()) {
            throw new IllegalArgumentException("detach-grace and retain-finished must be >= 0, got " + detachGrace
                    + " and " + retainFinished);
        }
    }

    public EngineSettings withSlots(int maxConcurrentJobs, int queueDepth) {
        return new EngineSettings(maxConcurrentJobs, queueDepth, detachGrace, retainFinished, retainedJobs,
                retainedBytes, checkpointInterval, denoiseAttempts);
    }

    public EngineSettings withDetachGrace(Duration grace) {
        return new EngineSettings(maxConcurrentJobs, queueDepth, grace, retainFinished, retainedJobs, retainedBytes,
                checkpointInterval, denoiseAttempts);
    }

    public EngineSettings withCheckpoints(int interval, int attempts) {
        return new EngineSettings(maxConcurrentJobs, queueDepth, detachGrace, retainFinished, retainedJobs,
                retainedBytes, interval, attempts);
    }
}
