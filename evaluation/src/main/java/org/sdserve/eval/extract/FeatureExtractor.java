package org.sdserve.eval.extract;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.image.PilResample;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.onnx.OnnxModel;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.Npy;
import org.sdserve.eval.metrics.Features;

/**
 * An image feature extractor for the quality measures: an ONNX graph from images to feature vectors (FID, precision
 * and recall, KID) and optionally class logits (the Inception Score), declared in its directory's config.json:
 * {@code input} (float [B, 3, size, size], RGB in {@code range}), {@code features} ([B, D]), {@code logits}
 * ([B, K], optional), and {@code reference_features} (a .npy of real images' features, optional). Images of
 * another size are resized to {@code size} as clean-fid resizes them (Pillow's bicubic, {@link PilResample}).
 * The demo's is models/scene-features (tools/demo-model/extractor.py); for real models, Inception-v3's pool3
 * (tools/eval/export_inception.py; README, "Quality measures").
 */
public final class FeatureExtractor implements AutoCloseable {
    /** One batch's outputs: features [n, D], logits [n, K] (null without a logits output). */
    public record Extracted(double[][] features, double[][] logits) {
    }

    private final OnnxModel model;
    private final Path dir;
    private final JsonNode config;
    private final int size;
    private final double low;
    private final double high;

    private FeatureExtractor(OnnxModel model, Path dir, JsonNode config) {
        this.model = model;
        this.dir = dir;
        this.config = config;
        this.size = config.path("size").asInt(0);
        this.low = config.path("range").path(0).asDouble(0);
        this.high = config.path("range").path(1).asDouble(1);
        if (size < 1 || !(high > low)) {
            throw new ModelContractException("feature extractor " + dir + ": config.json needs size >= 1 and range "
                    + "[low, high] with low < high");
        }
        model.requireInput(input(), 4, OnnxJavaType.FLOAT);
        model.requireOutput(config.path("features").asText("features"), 2, OnnxJavaType.FLOAT);
        if (config.hasNonNull("logits")) {
            model.requireOutput(config.get("logits").asText(), 2, OnnxJavaType.FLOAT);
        }
    }

    public static FeatureExtractor load(Path dir, ExecutionOptions opts) {
        JsonNode config;
        try {
            config = new ObjectMapper().readTree(Files.readString(dir.resolve("config.json")));
        } catch (IOException e) {
            throw new ModelContractException("feature extractor " + dir + ": cannot read config.json: "
                    + e.getMessage());
        }
        OnnxModel model = OnnxModel.open(dir, "feature_extractor", opts);
        try {
            return new FeatureExtractor(model, dir, config);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    private String input() {
        return config.path("input").asText("images");
    }

    /** Its directory's name (models/scene-features: "scene-features"). */
    public String name() {
        return dir.getFileName().toString();
    }

    public int size() {
        return size;
    }

    public boolean hasLogits() {
        return config.hasNonNull("logits");
    }

    /**
     * The images as the extractor's input [n, 3, size, size]: each channel, as float values 0..255, resized to
     * size x size when it is not (clean-fid's resize: Pillow's antialiased bicubic on float32 planes, clipped to
     * [0, 255]), then mapped linearly to the extractor's range.
     */
    public Extracted extract(List<RgbImage> images) {
        int plane = size * size;
        float[] px = new float[images.size() * 3 * plane];
        for (int i = 0; i < images.size(); i++) {
            RgbImage img = images.get(i);
            for (int c = 0; c < 3; c++) {
                float[] channel = img.channel(c);
                if (img.width() != size || img.height() != size) {
                    channel = PilResample.resize(channel, img.width(), img.height(), size, size,
                            PilResample.Filter.BICUBIC);
                }
                int at = (i * 3 + c) * plane;
                for (int k = 0; k < plane; k++) {
                    double v = Math.min(255, Math.max(0, channel[k]));
                    px[at + k] = (float) (low + v / 255 * (high - low));
                }
            }
        }
        return extract(new FloatTensor(new long[] {images.size(), 3, size, size}, px));
    }

    /** Input tensor [B, 3, size, size] already in the extractor's range. */
    public Extracted extract(FloatTensor pixels) {
        try (OnnxTensor in = model.floatInput(input(), pixels);
             OrtSession.Result r = model.run(Map.of(input(), in))) {
            double[][] features = model.floatOutput(r, config.path("features").asText("features")).rows();
            double[][] logits = hasLogits() ? model.floatOutput(r, config.get("logits").asText()).rows() : null;
            return new Extracted(features, logits);
        } catch (OrtException e) {
            throw new IllegalStateException("feature extractor: ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    /** The real images' features the directory ships (config.json reference_features), or null. */
    public Features reference() {
        FloatTensor t = referenceTensor();
        return t == null ? null : Features.of(t.rows());
    }

    /** The same as float32 [M, D], as the file holds them (half the memory of {@link #reference()}), or null. */
    public FloatTensor referenceTensor() {
        if (!config.hasNonNull("reference_features")) {
            return null;
        }
        Path file = dir.resolve(config.get("reference_features").asText());
        try {
            return Npy.readFloat32(file);
        } catch (IOException e) {
            throw new ModelContractException("feature extractor " + dir + ": cannot read " + file.getFileName()
                    + ": " + e.getMessage());
        }
    }

    @Override
    public void close() {
        model.close();
    }
}
