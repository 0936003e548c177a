package org.sdserve.denoise.scheduler;

import org.sdserve.common.error.InvalidRequestException;

/**
 * Timesteps and sigmas of the Euler family (diffusers' EulerDiscreteScheduler.set_timesteps): sigmas
 * interpolated from the training sigmas at the selected timesteps (or Karras-spaced between their ends, with
 * timesteps mapped back by log-sigma interpolation), then a final 0.
 */
record SigmaSchedule(double[] timesteps, double[] sigmas, float initNoiseSigma) {

    static SigmaSchedule euler(SchedulerConfig c, int steps, boolean karras) {
        float[] train = new NoiseSchedule(c).sigmas();
        double[] ts = Spacing.timesteps(c, steps, false);
        for (int i = 0; i < steps; i++) {
            ts[i] = (float) ts[i]; // diffusers keeps Euler timesteps as float32
        }
        double[] sig = new double[steps + 1];
        for (int i = 0; i < steps; i++) {
            sig[i] = Spacing.interp(train, ts[i]);
        }
        if (karras) {
            double[] k = Spacing.karras(sig[steps - 1], sig[0], steps);
            for (int i = 0; i < steps; i++) {
                sig[i] = k[i];
                ts[i] = (float) Spacing.sigmaToT(k[i], train);
            }
        }
        for (int i = 0; i < steps; i++) {
            sig[i] = (float) sig[i];
        }
        double max = 0;
        for (double s : sig) {
            max = Math.max(max, s);
        }
        boolean plain = c.timestepSpacing().equals("linspace") || c.timestepSpacing().equals("trailing");
        return new SigmaSchedule(ts, sig, (float) (plain ? max : Math.sqrt(max * max + 1)));
    }

    /** x0 from the model output at sigma (diffusers' k-diffusion parameterisation), in float32 as diffusers. */
    static float predOriginal(String predictionType, float sample, float out, float sigma) {
        return switch (predictionType) {
            case "epsilon" -> sample - sigma * out;
            case "v_prediction" -> {
                float s2 = sigma * sigma + 1f;
                yield out * (-sigma / (float) Math.sqrt(s2)) + sample / s2;
            }
            default -> throw new InvalidRequestException("prediction_type \"" + predictionType
                    + "\" is not supported by the Euler schedulers; use ddim or dpmpp_2m");
        };
    }
}
