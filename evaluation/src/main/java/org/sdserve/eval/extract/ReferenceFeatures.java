package org.sdserve.eval.extract;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.Npy;
import org.sdserve.common.tensor.TensorCodec;

/**
 * An extractor's reference set: the features of real images (for real models, e.g. the 30,000 COCO validation
 * images the SD papers measure FID against), computed by the extractor itself, with the resize the measured images
 * get ({@link FeatureExtractor#extract(List)}), written beside it as reference_features.npy (float32 [n, D]) and
 * named in its config.json. {@code sd reference-features} runs it.
 */
public final class ReferenceFeatures {
    /** Images per extractor call. */
    static final int BATCH = 64;
    public static final String FILE = "reference_features.npy";
    /** Fewest images of a set: more than precision and recall's k = 3 neighbours. */
    public static final int MIN_IMAGES = 4;

    private ReferenceFeatures() {
    }

    /**
     * Embeds {@code images} (PNG, JPEG or any image Java reads) with the extractor in {@code extractorDir}, writes
     * the features there and names them in its config.json (its other keys kept); {@code progress} hears the count
     * done after each batch.
     *
     * @return how many images were embedded
     */
    public static int write(Path extractorDir, List<Path> images, ExecutionOptions opts, IntConsumer progress)
            throws IOException {
        if (images.size() < MIN_IMAGES) {
            throw new IllegalArgumentException("a reference set needs at least " + MIN_IMAGES + " images (precision "
                    + "and recall take each vector's 3 nearest neighbours), got " + images.size());
        }
        List<double[]> features = new ArrayList<>(images.size());
        try (FeatureExtractor extractor = FeatureExtractor.load(extractorDir, opts)) {
            for (int from = 0; from < images.size(); from += BATCH) {
                List<RgbImage> batch = new ArrayList<>();
                for (Path p : images.subList(from, Math.min(images.size(), from + BATCH))) {
                    batch.add(RgbImage.fromPng(Files.readAllBytes(p), p.getFileName().toString()));
                }
                features.addAll(List.of(extractor.extract(batch).features()));
                progress.accept(features.size());
            }
        }
        Files.write(extractorDir.resolve(FILE), Npy.of(TensorCodec.encode(FloatTensor.ofRows(
                features.toArray(double[][]::new)))));
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        Path config = extractorDir.resolve("config.json");
        ObjectNode c = (ObjectNode) json.readTree(Files.readString(config));
        c.put("reference_features", FILE);
        Files.writeString(config, json.writeValueAsString(c) + "\n");
        return features.size();
    }
}
