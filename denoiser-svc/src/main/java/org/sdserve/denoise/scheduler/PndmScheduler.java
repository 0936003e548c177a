package org.sdserve.denoise.scheduler;

import java.util.ArrayList;
import java.util.List;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Pseudo numerical methods (Liu et al., arXiv:2202.09778), following diffusers' PNDMScheduler: unless
 * skip_prk_steps (SD 1.x configs), 12 Runge-Kutta (PRK) sub-steps over the first three intervals, then linear
 * multistep (PLMS) steps combining the last up to four model outputs with Adams-Bashforth weights
 * (1; 3,-1 /2; 23,-16,5 /12; 55,-59,37,-9 /24). The transfer is
 * x_prev = sqrt(a_prev / a_t) x - (a_prev - a_t) e / (a_t sqrt(1 - a_prev) + sqrt(a_t (1 - a_t) a_prev)).
 */
public final class PndmScheduler implements Scheduler {
    private final SchedulerConfig config;
    private final NoiseSchedule schedule;
    private final int[] prk;
    private final int[] plms;
    private final int ratio;
    private final float finalAlphaCumprod;
    private final List<float[]> ets = new ArrayList<>();
    private int counter;
    private float[] curModelOutput;
    private float[] curSample;

    public PndmScheduler(SchedulerConfig config, int steps) {
        this.config = config;
        this.schedule = new NoiseSchedule(config);
        int t = config.numTrainTimesteps();
        this.ratio = t / steps;
        this.finalAlphaCumprod = config.setAlphaToOne() ? 1f : schedule.alphaCumprod(0);
        int[] asc = new int[steps]; // diffusers' _timesteps, ascending
        double[] desc = Spacing.timesteps(config, steps, true);
        for (int i = 0; i < steps; i++) {
            asc[i] = (int) desc[steps - 1 - i];
        }
        if (config.skipPrkSteps()) {
            prk = new int[0];
            plms = new int[steps + 1]; // _ts[:-1] + _ts[-2:-1] + _ts[-1:], reversed
            int k = 0;
            plms[k++] = asc[steps - 1];
            plms[k++] = asc[steps - 2];
            for (int i = steps - 2; i >= 0; i--) {
                plms[k++] = asc[i];
            }
        } else {
            if (steps < 4) {
                throw new org.sdserve.common.error.InvalidRequestException(
                        "pndm with Runge-Kutta warm-up needs steps >= 4, got " + steps);
            }
            int half = ratio / 2;
            int[] p = new int[8]; // _ts[-4:].repeat(2) + tile([0, half], 4)
            for (int i = 0; i < 4; i++) {
                p[2 * i] = asc[steps - 4 + i];
                p[2 * i + 1] = asc[steps - 4 + i] + half;
            }
            int[] rep = new int[14]; // p[:-1].repeat(2)
            for (int i = 0; i < 7; i++) {
                rep[2 * i] = p[i];
                rep[2 * i + 1] = p[i];
            }
            prk = new int[12]; // [1:-1][::-1]
            for (int i = 0; i < 12; i++) {
                prk[i] = rep[12 - i];
            }
            plms = new int[steps - 3];
            for (int i = 0; i < steps - 3; i++) {
                plms[i] = asc[steps - 4 - i];
            }
        }
    }

    @Override
    public int steps() {
        return prk.length + plms.length;
    }

    @Override
    public double timestep(int index) {
        return index < prk.length ? prk[index] : plms[index - prk.length];
    }

    @Override
    public FloatTensor addNoise(FloatTensor original, FloatTensor noise, int index) {
        return AlphaPrediction.noised(original, noise, schedule.alphaCumprod((int) timestep(index)));
    }

    @Override
    public StepResult step(FloatTensor modelOutput, int index, FloatTensor sample, NoiseSource noise) {
        float[] out = index < prk.length ? stepPrk(modelOutput.data(), prk[index], sample.data())
                : stepPlms(modelOutput.data(), plms[index - prk.length], sample.data());
        return new StepResult(new FloatTensor(sample.shape(), out), null);
    }

    /** diffusers' ets (the last up to four model outputs), cur_model_output and cur_sample. */
    @Override
    public History history() {
        return History.of("ets", ets, "cur_model_output", curModelOutput, "cur_sample", curSample);
    }

    @Override
    public void restore(History h) {
        ets.clear();
        ets.addAll(h.list("ets"));
        curModelOutput = h.array("cur_model_output");
        curSample = h.array("cur_sample");
    }

    private float[] stepPrk(float[] e, int t, float[] x) {
        int diff = counter % 2 == 1 ? 0 : ratio / 2;
        int prev = t - diff;
        int base = prk[counter / 4 * 4];
        float[] use;
        switch (counter % 4) {
            case 0 -> {
                curModelOutput = axpy(null, 1f / 6, e);
                ets.add(e);
                curSample = x;
                use = e;
            }
            case 1, 2 -> {
                curModelOutput = axpy(curModelOutput, 1f / 3, e);
                use = e;
            }
            default -> {
                use = axpy(curModelOutput.clone(), 1f / 6, e);
                curModelOutput = null;
            }
        }
        counter++;
        return prevSample(curSample != null ? curSample : x, base, prev, use);
    }

    private float[] stepPlms(float[] e, int t, float[] x) {
        int prev = t - ratio;
        if (counter != 1) {
            while (ets.size() > 3) {
                ets.remove(0);
            }
            ets.add(e);
        } else {
            prev = t;
            t = t + ratio;
        }
        float[] use;
        int n = ets.size();
        if (n == 1 && counter == 0) {
            use = e;
            curSample = x;
        } else if (n == 1 && counter == 1) {
            use = combine(2, new int[] {1, 1}, e, ets.get(0));
            x = curSample;
            curSample = null;
        } else if (n == 2) {
            use = combine(2, new int[] {3, -1}, ets.get(1), ets.get(0));
        } else if (n == 3) {
            use = combine(12, new int[] {23, -16, 5}, ets.get(2), ets.get(1), ets.get(0));
        } else {
            use = combine(24, new int[] {55, -59, 37, -9}, ets.get(n - 1), ets.get(n - 2), ets.get(n - 3),
                    ets.get(n - 4));
        }
        counter++;
        return prevSample(x, t, prev, use);
    }

    /** diffusers' _get_prev_sample, in float32 and its order of operations. */
    private float[] prevSample(float[] x, int t, int prev, float[] e) {
        float aT = schedule.alphaCumprod(t);
        float aP = prev >= 0 ? schedule.alphaCumprod(prev) : finalAlphaCumprod;
        float bT = 1f - aT;
        float bP = 1f - aP;
        float coeff = (float) Math.sqrt(aP / aT);
        float denom = aT * (float) Math.sqrt(bP) + (float) Math.sqrt(aT * bT * aP);
        float diff = aP - aT;
        boolean v = config.predictionType().equals("v_prediction");
        float sqrtAT = (float) Math.sqrt(aT);
        float sqrtBT = (float) Math.sqrt(bT);
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float eps = v ? sqrtAT * e[i] + sqrtBT * x[i] : e[i];
            out[i] = coeff * x[i] - diff * eps / denom;
        }
        return out;
    }

    private static float[] axpy(float[] acc, float a, float[] x) {
        float[] out = acc == null ? new float[x.length] : acc;
        for (int i = 0; i < x.length; i++) {
            out[i] += a * x[i];
        }
        return out;
    }

    /** (w0 x0 + w1 x1 + ...) / divisor in float32, left to right, as diffusers writes the Adams-Bashforth sums. */
    private static float[] combine(int divisor, int[] w, float[]... xs) {
        float[] out = new float[xs[0].length];
        for (int i = 0; i < out.length; i++) {
            float v = w[0] * xs[0][i];
            for (int k = 1; k < xs.length; k++) {
                v += w[k] * xs[k][i];
            }
            out[i] = divisor == 24 ? (float) (1.0 / 24) * v : v / divisor; // diffusers: (1 / 24) * (...), else / d
        }
        return out;
    }
}
