package org.sdserve.eval.metrics;

import java.util.Arrays;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;

/**
 * Improved precision and recall (Kynkaenniemi et al. 2019), as their reference code (NVlabs ManifoldEstimator)
 * computes them: each set's manifold is the union of balls around its vectors, each of radius the distance to its
 * k-th nearest neighbour in the same set (k = 3); precision is the share of generated vectors inside the real
 * manifold, recall the share of real vectors inside the generated one. Distances are squared Euclidean,
 * ||u||^2 - 2 u.v + ||v||^2 clipped at 0, and a vector is inside when its distance is at most a radius.
 */
public final class PrecisionRecall {
    public static final int DEFAULT_K = 3;

    public record Result(double precision, double recall) {
    }

    private PrecisionRecall() {
    }

    public static Result of(Features real, Features generated, int k) {
        return of(real, radii(real, k), generated, k);
    }

    /**
     * The same with the real set's radii already known ({@link #radii(Features, int)}: its M^2 part, which a
     * service computes once per reference set rather than per evaluation).
     */
    public static Result of(Features real, double[] realRadii, Features generated, int k) {
        if (real.dimension() != generated.dimension()) {
            throw new IllegalArgumentException("feature dimensions differ: " + real.dimension() + " and "
                    + generated.dimension());
        }
        if (k < 1 || k >= Math.min(real.count(), generated.count())) {
            throw new IllegalArgumentException("k must be in [1, " + (Math.min(real.count(), generated.count()) - 1)
                    + "], got " + k);
        }
        if (realRadii.length != real.count()) {
            throw new IllegalArgumentException(realRadii.length + " radii for " + real.count() + " real vectors");
        }
        double[] generatedRadii = radii(generated.rows(), k);
        return new Result(coverage(generated.rows(), real.rows(), realRadii),
                coverage(real.rows(), generated.rows(), generatedRadii));
    }

    /** Squared distances [u rows, v rows]. */
    static DMatrixRMaj distances(DMatrixRMaj u, DMatrixRMaj v) {
        DMatrixRMaj d = new DMatrixRMaj(u.numRows, v.numRows);
        CommonOps_DDRM.multTransB(u, v, d);
        double[] nu = squaredNorms(u);
        double[] nv = squaredNorms(v);
        for (int i = 0; i < u.numRows; i++) {
            for (int j = 0; j < v.numRows; j++) {
                d.set(i, j, Math.max(0, nu[i] - 2 * d.get(i, j) + nv[j]));
            }
        }
        return d;
    }

    private static double[] squaredNorms(DMatrixRMaj m) {
        double[] out = new double[m.numRows];
        for (int i = 0; i < m.numRows; i++) {
            double s = 0;
            for (int j = 0; j < m.numCols; j++) {
                s += m.get(i, j) * m.get(i, j);
            }
            out[i] = s;
        }
        return out;
    }

    /** Rows of {@code m} taken together: distance blocks are [BLOCK, n], so memory grows as n, not n^2. */
    static final int BLOCK = 256;

    /** Rows [from, to) of {@code m}. */
    static DMatrixRMaj rows(DMatrixRMaj m, int from, int to) {
        return CommonOps_DDRM.extract(m, from, to, 0, m.numCols);
    }

    /** Each vector's squared distance to its k-th nearest neighbour in the set: the radii of its manifold's balls. */
    public static double[] radii(Features set, int k) {
        if (k < 1 || k >= set.count()) {
            throw new IllegalArgumentException("k must be in [1, " + (set.count() - 1) + "], got " + k);
        }
        return radii(set.rows(), k);
    }

    /** Each vector's distance to its k-th nearest neighbour in the set (index k of its sorted row: 0 is itself). */
    private static double[] radii(DMatrixRMaj set, int k) {
        double[] out = new double[set.numRows];
        double[] row = new double[set.numRows];
        for (int from = 0; from < set.numRows; from += BLOCK) {
            int to = Math.min(set.numRows, from + BLOCK);
            DMatrixRMaj d = distances(rows(set, from, to), set);
            for (int i = from; i < to; i++) {
                System.arraycopy(d.data, (i - from) * set.numRows, row, 0, set.numRows);
                Arrays.sort(row);
                out[i] = row[k];
            }
        }
        return out;
    }

    /** The share of {@code probes} within some ball of {@code centres}. */
    private static double coverage(DMatrixRMaj probes, DMatrixRMaj centres, double[] radii) {
        int inside = 0;
        for (int from = 0; from < probes.numRows; from += BLOCK) {
            int to = Math.min(probes.numRows, from + BLOCK);
            DMatrixRMaj d = distances(rows(probes, from, to), centres);
            for (int i = 0; i < to - from; i++) {
                for (int j = 0; j < centres.numRows; j++) {
                    if (d.get(i, j) <= radii[j]) {
                        inside++;
                        break;
                    }
                }
            }
        }
        return (double) inside / probes.numRows;
    }
}
