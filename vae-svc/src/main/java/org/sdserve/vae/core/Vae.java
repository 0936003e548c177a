package org.sdserve.vae.core;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OnnxTensor;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.onnx.RunStop;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.onnx.OnnxModel;
import org.sdserve.common.tensor.FloatTensor;

/**
 * The autoencoder stage. Decoder contract ({@code vae_decoder/model.onnx}): {@code latent_sample} float
 * [B,4,h,w] -> {@code sample} [B,3,8h,8w] in about [-1,1]. Encoder ({@code vae_encoder/model.onnx}, optional):
 * {@code sample} [B,3,H,W] in [-1,1] -> {@code latent_parameters} [B,8,h,w] (mean, then logvar; optimum >= 1.23)
 * or {@code latent_sample} [B,4,h,w] (sampled inside older graphs, cannot be seeded). Scaling is not inside the
 * graphs: decode(latents / scaling_factor), encode gives mean * scaling_factor.
 */
public final class Vae implements AutoCloseable {
    public static final int MAX_BATCH = 64;
    private final OnnxModel decoder;
    private final OnnxModel encoder; // null when the export has no vae_encoder
    private final float scalingFactor;
    private final int latentChannels;
    private final int factor;

    private Vae(OnnxModel decoder, OnnxModel encoder, float scalingFactor, int factor) {
        this.decoder = decoder;
        this.encoder = encoder;
        this.scalingFactor = scalingFactor;
        this.factor = factor;
        var in = decoder.requireInput("latent_sample", 4, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16);
        long c = OnnxModel.staticDim(in, 1);
        this.latentChannels = c > 0 ? (int) c : 4;
        decoder.requireOutput("sample", 4, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16);
        if (encoder != null) {
            encoder.requireInput("sample", 4, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16);
            if (!encoder.hasOutput("latent_parameters") && !encoder.hasOutput("latent_sample")) {
                throw new ModelContractException("vae_encoder: needs output latent_parameters or latent_sample; "
                        + encoder.describe());
            }
        }
    }

    public static Vae load(ModelDirectory dir, ExecutionOptions opts) {
        JsonNode config = dir.json("vae_decoder/config.json");
        if (!config.path("scaling_factor").isNumber()) {
            throw new ModelContractException("vae_decoder/config.json has no numeric scaling_factor "
                    + "(0.18215 for SD 1.x/2.x)");
        }
        float scaling = (float) config.get("scaling_factor").asDouble();
        int blocks = config.path("block_out_channels").isArray() ? config.get("block_out_channels").size() : 4;
        OnnxModel dec = OnnxModel.open(dir.component("vae_decoder"), "vae_decoder", opts);
        OnnxModel enc = null;
        try {
            if (dir.has("vae_encoder/model.onnx")) {
                enc = OnnxModel.open(dir.component("vae_encoder"), "vae_encoder", opts);
            }
            return new Vae(dec, enc, scaling, 1 << (blocks - 1));
        } catch (RuntimeException e) {
            dec.close();
            if (enc != null) {
                enc.close();
            }
            throw e;
        }
    }

    public float scalingFactor() {
        return scalingFactor;
    }

    public int factor() {
        return factor;
    }

    public boolean canEncode() {
        return encoder != null;
    }

    /** Latents [B,C,h,w] in UNet space -> B RGB images of (f h) x (f w). */
    public List<RgbImage> decode(FloatTensor latents) {
        return decode(latents, RunStop.NEVER);
    }

    /** The same, given up (JobCancelledException) as soon as {@code stop} fires: in the decoder run or after it. */
    public List<RgbImage> decode(FloatTensor latents, RunStop stop) {
        InvalidRequestException.require(latents.rank() == 4 && latents.dim(1) == latentChannels
                        && latents.dim(0) >= 1 && latents.dim(0) <= MAX_BATCH && latents.dim(2) > 0
                        && latents.dim(3) > 0,
                "latents must be [B in 1..%d, %d, h, w], got %s", MAX_BATCH, latentChannels,
                java.util.Arrays.toString(latents.shape()));
        FloatTensor pixels = decodePixels(latents, stop);
        List<RgbImage> images = new ArrayList<>(pixels.dim(0));
        for (int i = 0; i < pixels.dim(0); i++) {
            images.add(RgbImage.fromSignedUnit(pixels, i));
        }
        return images;
    }

    /** Latents [B,C,h,w] in UNet space -> the decoder's pixels [B,3,fh,fw] in about [-1,1]. */
    public FloatTensor decodePixels(FloatTensor latents) {
        return decodePixels(latents, RunStop.NEVER);
    }

    private FloatTensor decodePixels(FloatTensor latents, RunStop stop) {
        float[] src = latents.data();
        float[] scaled = new float[src.length];
        for (int i = 0; i < src.length; i++) {
            scaled[i] = src[i] / scalingFactor;
        }
        try (OnnxTensor in = decoder.floatInput("latent_sample", new FloatTensor(latents.shape(), scaled));
             OrtSession.Result r = decoder.run(Map.of("latent_sample", in), stop)) {
            return decoder.floatOutput(r, "sample");
        } catch (OrtException e) {
            throw new IllegalStateException("vae_decoder: ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    /**
     * Images of one size -> latents [B,C,H/f,W/f] in UNet space: the posterior mean times scaling_factor, or with
     * {@code noise} (per-image standard normal, same shape) mean + exp(0.5 clamp(logvar, -30, 20)) * noise.
     */
    public FloatTensor encode(List<RgbImage> images, FloatTensor noise) {
        return encode(images, noise, RunStop.NEVER);
    }

    /** The same, given up (JobCancelledException) as soon as {@code stop} fires. */
    public FloatTensor encode(List<RgbImage> images, FloatTensor noise, RunStop stop) {
        return encode(images, null, noise, stop);
    }

    /**
     * The same for inpainting UNets' masked image (diffusers' image * (mask < 0.5)): where {@code mask} (of the
     * images' size; null = none) says repaint ({@link RgbImage#masked}), the pixels are 0 in [-1, 1].
     */
    public FloatTensor encode(List<RgbImage> images, RgbImage mask, FloatTensor noise, RunStop stop) {
        InvalidRequestException.require(encoder != null, "this model has no vae_encoder: cannot encode images");
        InvalidRequestException.require(!images.isEmpty() && images.size() <= MAX_BATCH,
                "between 1 and %d images, got %d", MAX_BATCH, images.size());
        int w = images.get(0).width();
        int h = images.get(0).height();
        for (RgbImage img : images) {
            InvalidRequestException.require(img.width() == w && img.height() == h,
                    "all images must have the same size: %dx%d and %dx%d", w, h, img.width(), img.height());
        }
        InvalidRequestException.require(w % factor == 0 && h % factor == 0,
                "image size must be a multiple of %d, got %dx%d", factor, w, h);
        float[] px = new float[images.size() * 3 * w * h];
        for (int i = 0; i < images.size(); i++) {
            images.get(i).toSignedUnit(px, i);
        }
        if (mask != null) {
            InvalidRequestException.require(mask.width() == w && mask.height() == h,
                    "mask_png must be the images' size, %dx%d, got %dx%d", w, h, mask.width(), mask.height());
            int plane = w * h;
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    if (mask.masked(x, y)) {
                        for (int i = 0; i < images.size() * 3; i++) {
                            px[i * plane + y * w + x] = 0f;
                        }
                    }
                }
            }
        }
        FloatTensor pixels = new FloatTensor(new long[] {images.size(), 3, h, w}, px);
        if (!encoder.hasOutput("latent_parameters")) {
            InvalidRequestException.require(noise == null, "this vae_encoder samples inside its graph "
                    + "(output latent_sample): a seeded encode is not possible; omit the seed");
            return times(runEncoder(pixels, "latent_sample", stop), scalingFactor);
        }
        FloatTensor params = runEncoder(pixels, "latent_parameters", stop);
        int b = params.dim(0);
        int c = params.dim(1) / 2;
        int plane = params.dim(2) * params.dim(3);
        float[] p = params.data();
        float[] out = new float[b * c * plane];
        for (int i = 0; i < b; i++) {
            for (int k = 0; k < c * plane; k++) {
                float v = p[i * 2 * c * plane + k]; // mean
                if (noise != null) {
                    float logvar = Math.max(-30f, Math.min(20f, p[i * 2 * c * plane + c * plane + k]));
                    v += (float) Math.exp(0.5 * logvar) * noise.data()[i * c * plane + k];
                }
                out[i * c * plane + k] = v * scalingFactor;
            }
        }
        return new FloatTensor(new long[] {b, c, params.dim(2), params.dim(3)}, out);
    }

    /** Runs the encoder graph on pixels [B,3,H,W] in [-1,1] and returns output {@code name} as it is. */
    public FloatTensor runEncoder(FloatTensor pixels, String name) {
        return runEncoder(pixels, name, RunStop.NEVER);
    }

    private FloatTensor runEncoder(FloatTensor pixels, String name, RunStop stop) {
        try (OnnxTensor in = encoder.floatInput("sample", pixels);
             OrtSession.Result r = encoder.run(Map.of("sample", in), stop)) {
            return encoder.floatOutput(r, name);
        } catch (OrtException e) {
            throw new IllegalStateException("vae_encoder: ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    /** Decoder and encoder runs given up since start-up because their caller had gone. */
    public long runsGivenUp() {
        return decoder.terminatedRuns() + (encoder == null ? 0 : encoder.terminatedRuns());
    }

    public int latentChannels() {
        return latentChannels;
    }

    private static FloatTensor times(FloatTensor t, float s) {
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] *= s;
        }
        return t;
    }

    @Override
    public void close() {
        decoder.close();
        if (encoder != null) {
            encoder.close();
        }
    }
}
