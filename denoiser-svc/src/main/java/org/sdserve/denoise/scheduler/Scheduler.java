package org.sdserve.denoise.scheduler;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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

    /** UNet calls per inference step (diffusers' scheduler.order): 2 for Heun, else 1. */
    default int order() {
        return 1;
    }

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

    /**
     * What this run carries from one step to the next besides the sample (multistep history, the first stage of a
     * two-stage step), copied: a checkpoint's scheduler part. Empty for one-step schedulers.
     */
    default History history() {
        return History.NONE;
    }

    /**
     * Puts a checkpoint's history back. The caller has first run this instance through the checkpoint's steps
     * on stand-in data (its counters and scalars depend on the step index alone, and are then right) and checked
     * that {@code history} has the layout {@link #history()} then showed.
     */
    default void restore(History history) {
    }

    /**
     * A scheduler's data history by name, each entry a list of flat arrays the size of the latents ([B*C*h*w],
     * in the latents' layout), oldest first; a name is absent when its slot is empty.
     */
    record History(Map<String, List<float[]>> arrays) {
        public static final History NONE = new History(Map.of());

        /** Copies of the non-null arrays, in the order given; nulls are left out. */
        public static History of(Object... nameThenArrayOrList) {
            Map<String, List<float[]>> m = new LinkedHashMap<>();
            for (int i = 0; i < nameThenArrayOrList.length; i += 2) {
                String name = (String) nameThenArrayOrList[i];
                Object v = nameThenArrayOrList[i + 1];
                List<float[]> list = v instanceof float[] a ? List.of(a)
                        : v instanceof List<?> l ? l.stream().map(float[].class::cast).toList() : List.of();
                if (!list.isEmpty()) {
                    m.put(name, list.stream().map(float[]::clone).toList());
                }
            }
            return new History(Map.copyOf(m));
        }

        /** The single array under {@code name}, or null when the slot is empty. */
        public float[] array(String name) {
            List<float[]> l = arrays.get(name);
            return l == null ? null : l.get(0);
        }

        /** The arrays under {@code name}, oldest first (empty when none). */
        public List<float[]> list(String name) {
            return arrays.getOrDefault(name, List.of());
        }

        /** Same names, the same number of arrays under each, and every array of {@code length} elements. */
        public boolean sameLayout(History expected, int length) {
            if (!arrays.keySet().equals(expected.arrays.keySet())) {
                return false;
            }
            for (Map.Entry<String, List<float[]>> e : arrays.entrySet()) {
                if (e.getValue().size() != expected.arrays.get(e.getKey()).size()
                        || e.getValue().stream().anyMatch(a -> a.length != length)) {
                    return false;
                }
            }
            return true;
        }

        /** "name x count" per entry, for error messages. */
        public String layout() {
            return arrays.isEmpty() ? "none" : arrays.entrySet().stream().map(e -> e.getKey() + " x "
                    + e.getValue().size()).sorted().reduce((a, b) -> a + ", " + b).orElse("");
        }
    }

    /** prevSample: the latents for the next step; predOriginal: the predicted clean latents x0. */
    record StepResult(FloatTensor prevSample, FloatTensor predOriginal) {
    }
}
