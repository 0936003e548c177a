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
 * @param resume a checkpoint of this same job to continue from exactly (null = start afresh); excludes
 *     initLatents and startStep
 * @param checkpointInterval hand the listener a checkpoint every this many UNet calls (0 = never)
 * @param imageToImage the init image's latents and the strength (null = text-to-image); excludes initLatents and
 *     startStep
 */
public record DenoiseJob(FloatTensor promptEmbeds, FloatTensor negativeEmbeds, int width, int height, int steps,
                         float guidanceScale, String scheduler, long[] seeds, int previewInterval, float eta,
                         FloatTensor initLatents, int startStep, int endStep, Checkpoint resume,
                         int checkpointInterval, ImageToImage imageToImage) {

    /**
     * Image-to-image's start (diffusers' StableDiffusionImg2ImgPipeline).
     *
     * @param imageLatents the init image's latents [B, C, h, w], UNet space: a seeded posterior sample that drew
     *     each image's first noise tensor
     * @param strength in (0, 1]: the share of the schedule that runs
     * @param mask inpainting: [1 or B, 1, h, w], 1 = repaint, 0 = keep (the image's latents, noised to each step);
     *     null = image-to-image
     * @param maskedImageLatents an inpainting UNet's third input [B, C, h, w]: the masked image's latents (its
     *     sample the draw after the run's noise); null for standard UNets
     */
    public record ImageToImage(FloatTensor imageLatents, float strength, FloatTensor mask,
                               FloatTensor maskedImageLatents) {
        public ImageToImage(FloatTensor imageLatents, float strength) {
            this(imageLatents, strength, null, null);
        }

        public ImageToImage(FloatTensor imageLatents, float strength, FloatTensor mask) {
            this(imageLatents, strength, mask, null);
        }

        /**
         * diffusers' get_timesteps: the inference step the run starts at, steps - min(int(steps x strength), steps).
         * The strength is taken as the decimal it was written as (0.7f is 0.699999988; Python's 0.7 gives
         * int(10 x 0.7) = 7 steps where the float's value would give 6).
         */
        public int startStep(int steps) {
            double s = Double.parseDouble(Float.toString(strength));
            int init = (int) Math.min((long) (steps * s), steps);
            return Math.max(steps - init, 0);
        }
    }

    /** A job with checkpoints, text-to-image. */
    public DenoiseJob(FloatTensor promptEmbeds, FloatTensor negativeEmbeds, int width, int height, int steps,
                      float guidanceScale, String scheduler, long[] seeds, int previewInterval, float eta,
                      FloatTensor initLatents, int startStep, int endStep, Checkpoint resume, int checkpointInterval) {
        this(promptEmbeds, negativeEmbeds, width, height, steps, guidanceScale, scheduler, seeds, previewInterval,
                eta, initLatents, startStep, endStep, resume, checkpointInterval, null);
    }

    /** A job without checkpoints. */
    public DenoiseJob(FloatTensor promptEmbeds, FloatTensor negativeEmbeds, int width, int height, int steps,
                      float guidanceScale, String scheduler, long[] seeds, int previewInterval, float eta,
                      FloatTensor initLatents, int startStep, int endStep) {
        this(promptEmbeds, negativeEmbeds, width, height, steps, guidanceScale, scheduler, seeds, previewInterval,
                eta, initLatents, startStep, endStep, null, 0);
    }

    /** The same job, continued from {@code checkpoint} and handing out checkpoints every {@code interval} calls. */
    public DenoiseJob resumedFrom(Checkpoint checkpoint, int interval) {
        return new DenoiseJob(promptEmbeds, negativeEmbeds, width, height, steps, guidanceScale, scheduler, seeds,
                previewInterval, eta, initLatents, startStep, endStep, checkpoint, interval, imageToImage);
    }

    /** diffusers' rule: guidance runs (the doubled batch) only when the scale is above 1. */
    public boolean guided() {
        return guidanceScale > 1f;
    }
}
