package org.sdserve.common.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.tensor.FloatTensor;

/**
 * The committed demo model (models/sd-shapes-64, or -Dsd.model.dir) for stage and end-to-end tests, and its
 * reference_outputs.json: outputs the PyTorch modules gave for fixed inputs at export
 * (tools/demo-model/export.py).
 */
public final class DemoModel {
    private DemoModel() {
    }

    public static Path path() {
        Path p = Path.of(System.getProperty("sd.model.dir", "../models/sd-shapes-64"));
        if (!Files.isDirectory(p)) {
            throw new IllegalStateException("demo model not found at " + p.toAbsolutePath()
                    + " (set -Dsd.model.dir; the model is committed under models/)");
        }
        return p;
    }

    public static ModelDirectory directory() {
        return ModelDirectory.open(path());
    }

    public static JsonNode reference() {
        return directory().json("reference_outputs.json");
    }

    /** pattern(shape, k) of export.py: x[i] = float32(sin(k * i)) over the flat index, computed in double. */
    public static FloatTensor pattern(long[] shape, double k) {
        float[] d = new float[Math.toIntExact(FloatTensor.elementCount(shape))];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) Math.sin(k * i);
        }
        return new FloatTensor(shape, d);
    }

    /** Asserts a tensor against a summary {shape, sum, mean_abs, first[8]} of reference_outputs.json. */
    public static void assertMatches(JsonNode summary, FloatTensor t, double tolerance, String what) {
        long[] shape = t.shape();
        for (int i = 0; i < shape.length; i++) {
            assertEquals(summary.get("shape").get(i).asLong(), shape[i], what + " shape");
        }
        double sum = 0;
        double abs = 0;
        for (float f : t.data()) {
            sum += f;
            abs += Math.abs(f);
        }
        JsonNode first = summary.get("first");
        for (int i = 0; i < first.size(); i++) {
            assertEquals(first.get(i).asDouble(), t.data()[i], tolerance, what + " element " + i);
        }
        assertEquals(summary.get("mean_abs").asDouble(), abs / t.data().length, tolerance, what + " mean |x|");
        assertEquals(summary.get("sum").asDouble(), sum, tolerance * t.data().length, what + " sum");
    }
}
