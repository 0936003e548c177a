package org.sdserve.denoise.scheduler;

import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Heun's second-order method (Karras et al., 2022, Algorithm 1), following diffusers' HeunDiscreteScheduler: each
 * inference step but the last is two UNet calls, an Euler step to sigma_next and a correction with the average of
 * the two slopes, so a run of N steps makes 2N - 1 calls (steps() counts calls). Timesteps and sigmas are the
 * Euler ones with every inner entry doubled.
 */
public final class HeunDiscreteScheduler implements Scheduler {
    private final SchedulerConfig config;
    private final double[] timesteps;
    private final double[] sigmas;
    private final float initNoiseSigma;
    private float[] prevDerivative;
    private float[] firstSample;
    private double dt;

    public HeunDiscreteScheduler(SchedulerConfig config, int steps, boolean karras) {
        this.config = config;
        SigmaSchedule s = SigmaSchedule.euler(config, steps, karras);
        this.initNoiseSigma = s.initNoiseSigma();
        timesteps = new double[2 * steps - 1];
        sigmas = new double[2 * steps];
        timesteps[0] = s.timesteps()[0];
        sigmas[0] = s.sigmas()[0];
        for (int i = 1; i < steps; i++) {
            timesteps[2 * i - 1] = s.timesteps()[i];
            timesteps[2 * i] = s.timesteps()[i];
            sigmas[2 * i - 1] = s.sigmas()[i];
            sigmas[2 * i] = s.sigmas()[i];
        }
        sigmas[2 * steps - 1] = s.sigmas()[steps];
    }

    @Override
    public int steps() {
        return timesteps.length;
    }

    @Override
    public double timestep(int index) {
        return timesteps[index];
    }

    @Override
    public float initNoiseSigma() {
        return initNoiseSigma;
    }

    @Override
    public FloatTensor scaleModelInput(FloatTensor sample, int index) {
        return EulerDiscreteScheduler.scaled(sample, sigmas[index]);
    }

    /** x + n sigma (the sigma of step {@code index}). */
    @Override
    public FloatTensor addNoise(FloatTensor original, FloatTensor noise, int index) {
        return AlphaPrediction.combine(original, 1, noise, sigmas[index]);
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        boolean first = firstSample == null;
        double sigma = first ? sigmas[index] : sigmas[index - 1];
        double sigmaNext = first ? sigmas[index + 1] : sigmas[index];
        double at = first ? sigma : sigmaNext; // the second stage predicts x0 at sigma_next
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        if (first) {
            float[] d = new float[x.length];
            dt = sigmaNext - sigma;
            for (int i = 0; i < x.length; i++) {
                double p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], at);
                x0[i] = (float) p;
                d[i] = (float) ((x[i] - p) / sigma);
                out[i] = (float) (x[i] + d[i] * dt);
            }
            prevDerivative = d;
            firstSample = x;
        } else {
            for (int i = 0; i < x.length; i++) {
                double p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], at);
                x0[i] = (float) p;
                double d = ((x[i] - p) / sigmaNext + prevDerivative[i]) / 2;
                out[i] = (float) (firstSample[i] + d * dt);
            }
            prevDerivative = null;
            firstSample = null;
        }
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
