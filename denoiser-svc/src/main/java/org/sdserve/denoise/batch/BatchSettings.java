package org.sdserve.denoise.batch;

import java.time.Duration;

/**
 * How the denoiser merges the UNet calls of concurrent jobs.
 *
 * @param enabled false: every job runs its own loop on its caller's thread, as without a batcher
 * @param maxRows most UNet rows in one call (a guided image is 2 rows); a run with more rows runs alone
 * @param window how long a call that is not full waits for more rows to arrive (zero: never waits)
 */
public record BatchSettings(boolean enabled, int maxRows, Duration window) {
    public static final BatchSettings DEFAULT = new BatchSettings(true, 16, Duration.ZERO);
    public static final BatchSettings OFF = new BatchSettings(false, 1, Duration.ZERO);

    public BatchSettings {
        if (maxRows < 1) {
            throw new IllegalArgumentException("batch max-rows must be >= 1, got " + maxRows);
        }
        if (window.isNegative()) {
            throw new IllegalArgumentException("batch window must be >= 0, got " + window);
        }
    }
}
