package org.sdserve.denoise.core;

import com.fasterxml.jackson.databind.JsonNode;
import org.sdserve.common.model.ModelDirectory;

/**
 * Sizes a model accepts, derived from its configs: the VAE factor f = 2^(len(vae block_out_channels) - 1)
 * (8 for SD), the UNet's 2^(downsamplings) from its block_out_channels, and the default image size
 * unet sample_size x f (512 for SD 1.5). ONNX exports bake the UNet's upsampling sizes, so the latent size
 * must divide by 2^(downsamplings): image sizes are multiples of f x 2^(downsamplings).
 */
public record ModelGeometry(int vaeFactor, int sizeMultiple, int defaultWidth, int defaultHeight) {

    public static ModelGeometry read(ModelDirectory dir) {
        int f = 1 << (blocks(dir.optionalJson("vae_decoder/config.json").orElse(null), 4) - 1);
        JsonNode unet = dir.optionalJson("unet/config.json").orElse(null);
        int down = 1 << (blocks(unet, 4) - 1);
        int sample = unet != null && unet.path("sample_size").isInt() ? unet.get("sample_size").asInt() : 64;
        return new ModelGeometry(f, f * down, sample * f, sample * f);
    }

    private static int blocks(JsonNode config, int fallback) {
        if (config == null || !config.path("block_out_channels").isArray()) {
            return fallback;
        }
        return Math.max(1, config.get("block_out_channels").size());
    }
}
