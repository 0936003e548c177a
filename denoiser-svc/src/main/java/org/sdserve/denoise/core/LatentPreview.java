package org.sdserve.denoise.core;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Optional;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.tensor.FloatTensor;

/**
 * A cheap preview: each latent pixel's channels times a fixed [C,3] matrix (plus bias) gives RGB in [-1,1]
 * (ComfyUI's "latent2rgb"). Applied to the predicted clean latents x0, which read far better than the noisy
 * ones. The model's own {@code latent_preview.json} if present, else SD 1.x's published factors.
 */
public final class LatentPreview {
    /** SD 1.5's latent -> RGB factors (ComfyUI latent_formats.SD15), rows = channels, columns = R, G, B. */
    private static final float[][] SD15 = {{0.3512f, 0.2297f, 0.3227f}, {0.3250f, 0.4974f, 0.2350f},
        {-0.2829f, 0.1762f, 0.2721f}, {-0.2120f, -0.2616f, -0.7177f}};

    private final float[][] factors;
    private final float[] bias;

    public LatentPreview(float[][] factors, float[] bias) {
        this.factors = factors;
        this.bias = bias;
    }

    public static Optional<LatentPreview> forModel(ModelDirectory dir, int latentChannels) {
        Optional<JsonNode> json = dir.optionalJson("latent_preview.json");
        if (json.isPresent()) {
            JsonNode f = json.get().path("latent_rgb_factors");
            if (f.size() != latentChannels) {
                throw new ModelContractException("latent_preview.json: latent_rgb_factors needs " + latentChannels
                        + " rows of 3, got " + f.size());
            }
            float[][] m = new float[latentChannels][3];
            for (int c = 0; c < latentChannels; c++) {
                for (int k = 0; k < 3; k++) {
                    m[c][k] = (float) f.get(c).get(k).asDouble();
                }
            }
            float[] b = new float[3];
            JsonNode jb = json.get().path("latent_rgb_bias");
            for (int k = 0; k < 3 && jb.size() == 3; k++) {
                b[k] = (float) jb.get(k).asDouble();
            }
            return Optional.of(new LatentPreview(m, b));
        }
        return latentChannels == 4 ? Optional.of(new LatentPreview(SD15, new float[3])) : Optional.empty();
    }

    /** Item {@code index} of latents [B,C,h,w] as an RGB image of h x w. */
    public RgbImage render(FloatTensor latents, int index) {
        int c = latents.dim(1);
        int h = latents.dim(2);
        int w = latents.dim(3);
        int plane = h * w;
        float[] d = latents.data();
        int base = index * c * plane;
        byte[] rgb = new byte[plane * 3];
        for (int i = 0; i < plane; i++) {
            for (int k = 0; k < 3; k++) {
                float v = bias[k];
                for (int ch = 0; ch < c; ch++) {
                    v += d[base + ch * plane + i] * factors[ch][k];
                }
                v = Math.max(-1f, Math.min(1f, v));
                rgb[i * 3 + k] = (byte) Math.round((v + 1f) * 127.5f);
            }
        }
        return new RgbImage(w, h, rgb);
    }
}
