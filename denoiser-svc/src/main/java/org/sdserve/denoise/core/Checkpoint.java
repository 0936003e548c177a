package org.sdserve.denoise.core;

import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.denoise.scheduler.Scheduler;

/**
 * A run's complete state after {@code step} UNet calls: with the job's request, all a replica needs to continue
 * it and end with the very latents an undisturbed run ends with.
 *
 * @param step UNet calls done (1-based count; the next call is index {@code step})
 * @param latents the sample before call {@code step}, [B, C, h, w] in UNet space
 * @param history the scheduler's data history at that point (multistep outputs, a two-stage step's first half)
 * @param noiseDraws tensors each image's generator has drawn so far (the initial noise included): its position
 */
public record Checkpoint(int step, FloatTensor latents, Scheduler.History history, long noiseDraws) {
}
