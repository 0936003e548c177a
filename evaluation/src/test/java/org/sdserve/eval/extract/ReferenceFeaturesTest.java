package org.sdserve.eval.extract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.eval.metrics.Features;

/**
 * A reference set written by ReferenceFeatures is what the extractor gives for the same images (70 of them: two
 * batches; 64x64 and 96x80, which the extractor resizes as clean-fid would), and the config keeps its other keys.
 */
class ReferenceFeaturesTest {
    private static final Path DEMO = Path.of(System.getProperty("sd.root", "..")).resolve("models/scene-features");

    @Test
    void theReferenceSetIsTheExtractorsFeaturesOfTheImages(@TempDir Path dir) throws Exception {
        Path extractor = dir.resolve("extractor");
        Files.createDirectories(extractor);
        Files.copy(DEMO.resolve("model.onnx"), extractor.resolve("model.onnx"));
        ObjectMapper json = new ObjectMapper();
        JsonNode demoConfig = json.readTree(Files.readString(DEMO.resolve("config.json")));
        var config = demoConfig.deepCopy();
        ((com.fasterxml.jackson.databind.node.ObjectNode) config).remove("reference_features");
        Files.writeString(extractor.resolve("config.json"), json.writeValueAsString(config));

        List<RgbImage> images = new ArrayList<>();
        List<Path> files = new ArrayList<>();
        for (int i = 0; i < 70; i++) {
            int w = i % 3 == 0 ? 96 : 64;
            int h = i % 3 == 0 ? 80 : 64;
            byte[] rgb = new byte[w * h * 3];
            for (int k = 0; k < rgb.length; k++) {
                rgb[k] = (byte) ((k * (i + 7) + (k / (3 * w)) * 31) % 256);
            }
            RgbImage img = new RgbImage(w, h, rgb);
            images.add(img);
            Path f = dir.resolve(String.format("%03d.png", i));
            Files.write(f, img.toPng());
            files.add(f);
        }
        List<Integer> progress = new ArrayList<>();
        assertEquals(70, ReferenceFeatures.write(extractor, files, ExecutionOptions.CPU, progress::add));
        assertEquals(List.of(64, 70), progress);

        JsonNode written = json.readTree(Files.readString(extractor.resolve("config.json")));
        assertEquals("reference_features.npy", written.get("reference_features").asText());
        assertEquals(demoConfig.get("held_out_accuracy"), written.get("held_out_accuracy"), "other keys kept");
        try (FeatureExtractor e = FeatureExtractor.load(extractor, ExecutionOptions.CPU)) {
            Features reference = e.reference();
            assertEquals(70, reference.count());
            double[][] direct = e.extract(images).features();
            for (int i = 0; i < 70; i++) {
                double[] row = new double[reference.dimension()];
                System.arraycopy(reference.rows().data, i * row.length, row, 0, row.length);
                assertArrayEquals(direct[i], row, 0.0, "image " + i);
            }
        }
        assertThrows(IllegalArgumentException.class,
                () -> ReferenceFeatures.write(extractor, files.subList(0, 1), ExecutionOptions.CPU, n -> { }));
    }
}
