package org.sdserve.denoise.scheduler;

import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * DPM2 (Karras et al. 2022, Algorithm 2), following diffusers' KDPM2DiscreteScheduler and, ancestral, its
 * KDPM2AncestralDiscreteScheduler: each step but the last is two UNet calls, a first-order move from sigma to the
 * log-midpoint sigma_mid = sqrt(sigma sigma_next), then from the step's start with the derivative the model gives
 * at that midpoint; the last step is one first-order call to 0 (2N - 1 calls for N steps; steps() counts calls). The
 * ancestral form's second call steps to sigma_down and adds fresh noise of scale sigma_up, its midpoint between
 * sigma and sigma_down.
 *
 * <p>Per call k: even k is a step's first call (the model at sigma_k), odd k its second (the model at the midpoint),
 * so the stage follows from the index, as diffusers' sample state does from its begin index.
 */
public final class KDpm2Scheduler extends SigmaScheduler {
    private final boolean ancestral;
    private final double[] start; // per step j: sigma_j, where both its calls start
    private final double[] mid; // the log-midpoint the first call moves to (0 for the last step)
    private final double[] end; // where the second call moves to: sigma_{j+1}, or sigma_down_j when ancestral
    private final double[] up; // ancestral: sigma_up_j, the scale of the noise the second call adds
    private float[] firstSample; // the step's start, between its two calls

    public KDpm2Scheduler(SchedulerConfig config, int steps, boolean karras, boolean ancestral) {
        this(config, Schedule.of(config, steps, karras, ancestral), ancestral);
    }

    private KDpm2Scheduler(SchedulerConfig config, Schedule s, boolean ancestral) {
        super(config, s.timesteps, s.inputSigmas, s.initNoiseSigma);
        this.ancestral = ancestral;
        this.start = s.start;
        this.mid = s.mid;
        this.end = s.end;
        this.up = s.up;
    }

    /**
     * diffusers' set_timesteps, per step: its sigmas (float32, a final 0), for the ancestral form sigma_up and
     * sigma_down of each step, the midpoints sigmas.log().lerp(other.log(), 0.5).exp() (torch.lerp at 0.5: end -
     * (end - self) / 2, in float32) with other the previous sigma (plain; diffusers' roll(1), so the midpoint of step
     * j is the entry j + 1) or sigma_down (ancestral; the last two set to 0), and per call the timestep (the
     * midpoint's by _sigma_to_t for a second call) and the sigma of the model input.
     */
    private record Schedule(double[] timesteps, double[] inputSigmas, float initNoiseSigma, double[] start,
                            double[] mid, double[] end, double[] up) {
        static Schedule of(SchedulerConfig c, int steps, boolean karras, boolean ancestral) {
            float[] train = new NoiseSchedule(c).sigmas();
            SigmaSchedule base = SigmaSchedule.euler(c, steps, karras);
            double[] ts = base.timesteps().clone();
            if (karras) {
                for (int i = 0; i < steps; i++) {
                    ts[i] = Math.rint(ts[i]); // KDPM2 rounds the Karras timesteps (Euler does not)
                }
            }
            double[] s = base.sigmas(); // steps + 1, the last 0
            double[] mid = new double[steps];
            double[] end = new double[steps];
            double[] up = new double[steps];
            for (int j = 0; j < steps; j++) {
                float from = (float) s[j];
                float to = (float) s[j + 1];
                if (ancestral) {
                    float sUp = (float) Math.sqrt(to * to * (from * from - to * to) / (from * from));
                    float sDown = (float) Math.sqrt(to * to - sUp * sUp);
                    up[j] = sUp;
                    end[j] = sDown;
                    mid[j] = j == steps - 1 ? 0 : logMidpoint(from, sDown);
                } else {
                    end[j] = to;
                    mid[j] = logMidpoint(to, from);
                }
            }
            int calls = 2 * steps - 1;
            double[] t = new double[calls];
            double[] input = new double[calls + 1];
            for (int k = 0; k < calls; k++) {
                int j = k / 2;
                boolean first = k % 2 == 0;
                t[k] = first ? ts[j] : (float) Spacing.sigmaToT(mid[j], train);
                input[k] = first ? s[j] : mid[j];
            }
            return new Schedule(t, input, base.initNoiseSigma(), s, mid, end, up);
        }

        /** exp(lerp(log self, log end, 0.5)) as torch computes it in float32. */
        private static double logMidpoint(float self, float end) {
            float a = (float) Math.log(self);
            float b = (float) Math.log(end);
            return (float) Math.exp(b - (b - a) * 0.5f);
        }
    }

    @Override
    public int order() {
        return 2;
    }

    @Override
    public boolean stochastic() {
        return ancestral;
    }

    @Override
    public History history() {
        return History.of("sample", firstSample);
    }

    @Override
    public void restore(History h) {
        firstSample = h.array("sample");
    }

    /** One call in float32, in diffusers' order of operations: even calls start a step, odd ones finish it. */
    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        int j = index / 2;
        boolean first = index % 2 == 0;
        float sigma = (float) start[j];
        float at = first ? sigma : (float) mid[j]; // where the model output was predicted
        float dt = (float) (first ? mid[j] : end[j]) - sigma;
        float[] m = modelOutput.data();
        float[] x = sample.data();
        float[] from = first ? x : firstSample;
        float[] z = !first && ancestral ? noise.randn(sample.shape()).data() : null;
        float sUp = (float) up[j];
        float[] x0 = new float[x.length];
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float p = SigmaSchedule.predOriginal(config.predictionType(), x[i], m[i], at);
            x0[i] = p;
            float derivative = (x[i] - p) / at;
            out[i] = from[i] + derivative * dt;
            if (z != null) {
                out[i] = out[i] + z[i] * sUp;
            }
        }
        firstSample = first ? x : null;
        return new StepResult(new FloatTensor(sample.shape(), out), new FloatTensor(sample.shape(), x0));
    }
}
