package org.sdserve.eval.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The measures against the reference implementations' formulas run with numpy and scipy
 * (tools/goldens/eval_metrics.py, goldens/metrics.json): FID as pytorch-fid computes it (scipy.linalg.sqrtm), and
 * the same trace from symmetric eigenvalues; the Inception Score as openai/improved-gan; precision and recall as
 * NVlabs' ManifoldEstimator; KID's unbiased estimate. The feature sets are generated here and there bit for bit:
 * 64 dimensions, 2048 dimensions with more vectors than dimensions, and 2048 dimensions with fewer (singular,
 * near rank-32 covariances).
 */
class MetricsReferenceTest {
    private static JsonNode goldens;

    @BeforeAll
    static void load() throws Exception {
        try (InputStream in = MetricsReferenceTest.class.getResourceAsStream("/goldens/metrics.json")) {
            goldens = new ObjectMapper().readTree(in);
        }
    }

    /** splitmix64 uniforms in [0, 1): the top 53 bits of the mixed state seed + i x golden gamma, i = 1, 2, ... */
    static double[] uniforms(long seed, int count) {
        double[] out = new double[count];
        for (int i = 0; i < count; i++) {
            long z = seed + (i + 1L) * 0x9E3779B97F4A7C15L;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            z = z ^ (z >>> 31);
            out[i] = (z >>> 11) * 0x1.0p-53;
        }
        return out;
    }

    /** Irwin-Hall normals: (u0 + u1 + u2 + u3 - 2) sqrt(3), row-major. */
    static double[] normals(long seed, int count) {
        double[] u = uniforms(seed, 4 * count);
        double[] out = new double[count];
        for (int i = 0; i < count; i++) {
            double s = ((u[4 * i] + u[4 * i + 1]) + u[4 * i + 2]) + u[4 * i + 3];
            out[i] = (s - 2.0) * Math.sqrt(3.0);
        }
        return out;
    }

    /** The script's features(): (z W) / sqrt(rank) * scale + noise e + shift, z W summed over k in order. */
    static Features features(JsonNode spec) {
        long seed = spec.get("seed").asLong();
        int n = spec.get("n").asInt();
        int d = spec.get("d").asInt();
        int rank = spec.get("rank").asInt();
        double noise = spec.get("noise").asDouble();
        double shift = spec.get("shift").asDouble();
        double scale = spec.get("scale").asDouble();
        double[] z = normals(seed, n * rank);
        double[] w = normals(seed + 1, rank * d);
        double[] e = normals(seed + 2, n * d);
        double[][] x = new double[n][d];
        for (int k = 0; k < rank; k++) {
            for (int i = 0; i < n; i++) {
                double zik = z[i * rank + k];
                for (int j = 0; j < d; j++) {
                    x[i][j] = x[i][j] + zik * w[k * d + j];
                }
            }
        }
        double root = Math.sqrt(rank);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                x[i][j] = x[i][j] / root * scale + noise * e[i * d + j] + shift;
            }
        }
        return Features.of(x);
    }

    private static Features set(String name) {
        return features(goldens.get("sets").get(name));
    }

    private static void assertRelative(double want, double got, double tolerance, String what) {
        System.out.printf("%s: %.12g (reference %.12g, relative %.2e)%n", what, got, want,
                Math.abs(got - want) / Math.abs(want));
        assertEquals(want, got, Math.abs(want) * tolerance, what);
    }

    @Test
    void fidIsPytorchFidsWithin1e6AndTheExactTracesWithin1e9() {
        for (String pair : new String[] {"small", "wide", "singular"}) {
            long t0 = System.nanoTime();
            double fid = Fid.distance(set(pair + "_real"), set(pair + "_gen"));
            System.out.printf("FID %s in %d ms%n", pair, (System.nanoTime() - t0) / 1_000_000);
            JsonNode ref = goldens.get("fid").get(pair);
            assertRelative(ref.get("pytorch_fid").asDouble(), fid, 1e-6, "FID " + pair + " vs pytorch-fid (sqrtm)");
            assertRelative(ref.get("eigen").asDouble(), fid, 1e-9, "FID " + pair + " vs numpy eigvalsh");
        }
    }

    /**
     * A set against itself shifted by c in every dimension: FID = d c^2 exactly (the covariances are equal), here
     * with a constant dimension, so that the covariance is only semi-definite (its square root, not Cholesky).
     */
    @Test
    void aShiftedCopyIsItsShiftSquaredAlsoForASemiDefiniteCovariance() {
        double[] z = normals(5, 300 * 20);
        double[][] x = new double[300][20];
        double[][] shifted = new double[300][20];
        for (int i = 0; i < 300; i++) {
            for (int j = 0; j < 20; j++) {
                x[i][j] = j == 0 ? 1.0 : z[i * 20 + j];
                shifted[i][j] = x[i][j] + 0.5;
            }
        }
        assertEquals(20 * 0.25, Fid.distance(Features.of(x), Features.of(shifted)), 1e-9);
        assertEquals(0, Fid.distance(Features.of(x), Features.of(x)), 1e-9);
    }

    @Test
    void inceptionScoreIsTheReferenceImplementations() {
        JsonNode spec = goldens.get("inception_score");
        int n = spec.get("n").asInt();
        int classes = spec.get("classes").asInt();
        double[] z = normals(spec.get("seed").asLong(), n * classes);
        double[][] logits = new double[n][classes];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < classes; k++) {
                logits[i][k] = z[i * classes + k] * spec.get("scale").asDouble();
            }
        }
        InceptionScore.Score s = InceptionScore.ofLogits(logits, spec.get("splits").asInt());
        assertRelative(spec.get("value").get(0).asDouble(), s.mean(), 1e-12, "IS mean");
        assertRelative(spec.get("value").get(1).asDouble(), s.std(), 1e-9, "IS std");
    }

    @Test
    void precisionAndRecallAreTheManifoldEstimators() {
        PrecisionRecall.Result r = PrecisionRecall.of(set("small_real"), set("small_gen"), PrecisionRecall.DEFAULT_K);
        assertEquals(goldens.get("precision_recall").get("precision").asDouble(), r.precision());
        assertEquals(goldens.get("precision_recall").get("recall").asDouble(), r.recall());
    }

    @Test
    void kidIsTheUnbiasedMmdEstimate() {
        assertRelative(goldens.get("kid").asDouble(), Kid.of(set("small_real"), set("small_gen")), 1e-9, "KID");
    }
}
