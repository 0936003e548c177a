package org.sdserve.denoise.core;

import org.sdserve.common.tensor.FloatTensor;

/**
 * One denoising run, as the stage receives it.
 *
 * @param promptEmbeds text states [1 or B, 77, W]
 * @param negativeEmbeds unconditional states, same shape; null when guidance is off
 * @param seeds one per image; B = seeds.length
 * @param initLatents optional starting latents [B, C, h, w] (UNet space) to resume at {@code startStep}
 * @param startStep first UNet call of the schedule to run (0-based); with initLatents, a job continues elsewhere
 * @param endStep run UNet calls [startStep, endStep) and return the latents (0 = to the end)
 */
public record DenoiseJob(FloatTensor promptEmbeds, FloatTensor negativeEmbeds, int width, int height, int steps,
                         float guidanceScale, String scheduler, long[] seeds, int previewInterval, float eta,
                         FloatTensor initLatents, int startStep, int endStep) {

    /** diffusers' rule: guidance runs (the doubled batch) only when the scale is above 1. */
    public boolean guided() {
        return guidanceScale > 1f;
    }
}
