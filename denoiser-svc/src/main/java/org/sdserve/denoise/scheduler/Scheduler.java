package org.sdserve.denoise.scheduler;

import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * A sampler over a model's noise schedule: the timesteps of a run, how to scale the model input, and one
 * update step. A new instance per job (multistep history is private state). Steps are addressed by index
 * (0 = the noisiest), not by timestep value.
 */
public interface Scheduler {
    /** Number of denoising steps (UNet calls) of the run. */
    int steps();

    /** The timestep passed to the UNet at step {@code index} (may be fractional for sigma schedulers). */
    double timestep(int index);

    /** Standard deviation of the initial noise: latents = randn * initNoiseSigma (1 for alpha-space schedulers). */
    default float initNoiseSigma() {
        return 1f;
    }

    /** The UNet input at step {@code index}: the sample itself, except x / sqrt(sigma^2 + 1) for sigma schedulers. */
    default FloatTensor scaleModelInput(FloatTensor sample, int index) {
        return sample;
    }

    /**
     * One update: from the model output at step {@code index} and the current sample, the next sample and the
     * predicted clean sample x0. {@code noise} supplies per-image seeded noise for stochastic schedulers.
     */
    StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise);

    /**
     * The forward process: {@code original} noised to the level of step {@code index} (diffusers' add_noise), the
     * start of image-to-image and of resumed or partial runs.
     */
    FloatTensor addNoise(FloatTensor original, FloatTensor noise, int index);

    /** Whether {@link #step} draws noise (ancestral / eta > 0). */
    default boolean stochastic() {
        return false;
    }

    /** prevSample: the latents for the next step; predOriginal: the predicted clean latents x0. */
    record StepResult(FloatTensor prevSample, FloatTensor predOriginal) {
    }
}
