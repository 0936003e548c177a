package org.sdserve.denoise.app;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import org.sdserve.common.config.StageSettings;
import org.sdserve.denoise.batch.BatchSettings;

/** {@code sd.denoiser.*}: model-dir, host, port (50052), device, threads, ... (see StageSettings), batch.*. */
@ConfigMapping(prefix = "sd.denoiser")
public interface DenoiserConfig extends StageSettings {
    Batch batch();

    /**
     * Steps that end sooner than this after the last progress event sent are folded into the next one (the first
     * and last steps and steps with previews always go): each event costs the denoiser time across processes.
     * 0 sends every step.
     */
    @WithDefault("PT0.02S")
    Duration progressInterval();

    /**
     * Activation memory this replica may have in flight: "auto" (80% of the container's memory limit, else of the
     * machine's, less what the process holds once the model is loaded), "0" (no admission control), or a size
     * ("6G"). Jobs wait while theirs does not fit beside the running ones; one that could never fit is refused.
     * Measured on the CPU; off on a GPU (its memory is not this process's).
     */
    @WithDefault("auto")
    String memoryBudget();

    /** {@code batch.*}: step-level batching of concurrent jobs' UNet calls. */
    interface Batch {
        /** false: each job runs its own UNet calls, concurrently with the others. */
        @WithDefault("true")
        boolean enabled();

        /** Most UNet rows in one call (a guided image is 2 rows). */
        @WithDefault("16")
        int maxRows();

        /** How long a call that is not full waits for more rows (0: never waits). */
        @WithDefault("PT0S")
        Duration window();

        default BatchSettings settings() {
            return new BatchSettings(enabled(), maxRows(), window());
        }
    }
}
