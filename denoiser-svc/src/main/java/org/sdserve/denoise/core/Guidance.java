package org.sdserve.denoise.core;

import org.sdserve.common.tensor.FloatTensor;

/** Classifier-free guidance (Ho and Salimans, 2022), as in diffusers' StableDiffusionPipeline. */
public final class Guidance {
    private Guidance() {
    }

    /**
     * eps = eps_uncond + s * (eps_text - eps_uncond), from the UNet output of the doubled batch
     * [uncond_0..uncond_{B-1}, text_0..text_{B-1}] of shape [2B, C, h, w]; returns [B, C, h, w].
     */
    public static FloatTensor apply(FloatTensor doubled, float scale) {
        long[] shape = doubled.shape();
        if (shape[0] % 2 != 0) {
            throw new IllegalArgumentException("guidance needs an even batch, got " + shape[0]);
        }
        shape[0] /= 2;
        float[] d = doubled.data();
        int half = d.length / 2;
        float[] out = new float[half];
        for (int i = 0; i < half; i++) {
            float u = d[i];
            out[i] = u + scale * (d[half + i] - u);
        }
        return new FloatTensor(shape, out);
    }
}
