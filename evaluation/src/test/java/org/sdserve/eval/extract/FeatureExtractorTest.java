package org.sdserve.eval.extract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.eval.metrics.Features;
import org.sdserve.eval.metrics.Fid;
import org.sdserve.eval.metrics.PrecisionRecall;

/**
 * The demo's feature extractor (models/scene-features, tools/demo-model/extractor.py) through ONNX Runtime: its
 * outputs for a fixed input equal what the exported PyTorch module gave (reference_outputs.json), the logits are the
 * log of a joint distribution over 32 classes, and the reference features of real scenes load, with two halves of
 * them close by every measure.
 */
class FeatureExtractorTest {
    private static final Path DIR = Path.of(System.getProperty("sd.root", "..")).resolve("models/scene-features");

    @Test
    void theGraphGivesWhatPyTorchRecordedAndTheReferenceSetLoads() throws Exception {
        JsonNode ref = new ObjectMapper().readTree(Files.readString(DIR.resolve("reference_outputs.json")));
        try (FeatureExtractor e = FeatureExtractor.load(DIR, ExecutionOptions.CPU)) {
            float[] px = new float[2 * 3 * 64 * 64];
            for (int i = 0; i < px.length; i++) {
                px[i] = (float) ((Math.sin(i * 0.01) + 1) / 2); // the recorded probe (float64 sin, then float32)
            }
            FeatureExtractor.Extracted out = e.extract(new FloatTensor(new long[] {2, 3, 64, 64}, px));
            assertEquals(64, out.features()[0].length);
            assertEquals(32, out.logits()[0].length);
            for (int k = 0; k < 8; k++) {
                assertEquals(ref.get("features_first").get(k).asDouble(), out.features()[0][k], 1e-4, "feature " + k);
                assertEquals(ref.get("logits_first").get(k).asDouble(), out.logits()[0][k], 1e-4, "logit " + k);
            }
            double sum = Arrays.stream(out.features()).flatMapToDouble(Arrays::stream).sum();
            assertEquals(ref.get("features_sum").asDouble(), sum, 1e-3 * Math.max(1, Math.abs(sum)));
            double p = Arrays.stream(out.logits()[1]).map(Math::exp).sum();
            assertEquals(1.0, p, 1e-5, "the logits are log-probabilities of one distribution");

            Features real = e.reference();
            assertEquals(2048, real.count());
            assertEquals(64, real.dimension());
            double[][] rows = new double[2048][];
            for (int i = 0; i < 2048; i++) {
                rows[i] = Arrays.copyOfRange(real.rows().data, i * 64, (i + 1) * 64);
            }
            Features a = Features.of(Arrays.copyOfRange(rows, 0, 1024));
            Features b = Features.of(Arrays.copyOfRange(rows, 1024, 2048));
            double fid = Fid.distance(a, b);
            PrecisionRecall.Result pr = PrecisionRecall.of(a, b, PrecisionRecall.DEFAULT_K);
            System.out.printf("scene features: two halves of the real set: FID %.4f, precision %.3f, recall %.3f%n",
                    fid, pr.precision(), pr.recall());
            double scaled = Fid.distance(a, Features.of(scaled(rows, 1024)));
            System.out.printf("  against the second half with its features scaled by 1.5: FID %.4f%n", scaled);
            assertTrue(fid < 0.1 * scaled, "FID " + fid + " against " + scaled);
            assertTrue(pr.precision() > 0.8 && pr.recall() > 0.8, pr.toString());
        }
    }

    /** The second half with every feature times 1.5: a clearly different set, for scale. */
    private static double[][] scaled(double[][] rows, int from) {
        double[][] out = new double[rows.length - from][];
        for (int i = from; i < rows.length; i++) {
            out[i - from] = Arrays.stream(rows[i]).map(v -> v * 1.5).toArray();
        }
        return out;
    }
}
