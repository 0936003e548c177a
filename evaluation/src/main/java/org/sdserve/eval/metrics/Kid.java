package org.sdserve.eval.metrics;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;

/**
 * Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic
 * polynomial kernel k(x, y) = (x.y / d + 1)^3, over all pairs of the two whole sets (clean-fid and torch-fidelity
 * average it over random subsets of 1000; this is the same estimator without the subsets), summed a block of rows
 * at a time.
 */
public final class Kid {
    private Kid() {
    }

    public static double of(Features a, Features b) {
        return of(a, selfTerm(a), b);
    }

    /** The mean kernel value over distinct pairs of one set: a's M^2 part, computed once per reference set. */
    public static double selfTerm(Features a) {
        return kernelSum(a.rows(), a.rows(), a.dimension(), true) / ((double) a.count() * (a.count() - 1));
    }

    /** The same with {@code a}'s self term already known ({@link #selfTerm(Features)}). */
    public static double of(Features a, double aSelfTerm, Features b) {
        if (a.dimension() != b.dimension()) {
            throw new IllegalArgumentException("feature dimensions differ: " + a.dimension() + " and "
                    + b.dimension());
        }
        int d = a.dimension();
        double xx = aSelfTerm;
        double yy = kernelSum(b.rows(), b.rows(), d, true) / ((double) b.count() * (b.count() - 1));
        double cross = kernelSum(a.rows(), b.rows(), d, false);
        return xx + yy - 2 * cross / ((double) a.count() * b.count());
    }

    /**
     * The sum of k(u_i, v_j) over all pairs (without i = j when {@code offDiagonal}: u and v are one set), a block
     * of rows of u at a time, so that memory grows as n rather than n^2.
     */
    private static double kernelSum(DMatrixRMaj u, DMatrixRMaj v, int d, boolean offDiagonal) {
        double sum = 0;
        for (int from = 0; from < u.numRows; from += PrecisionRecall.BLOCK) {
            int to = Math.min(u.numRows, from + PrecisionRecall.BLOCK);
            DMatrixRMaj k = kernel(PrecisionRecall.rows(u, from, to), v, d);
            for (int i = 0; i < k.numRows; i++) {
                for (int j = 0; j < k.numCols; j++) {
                    if (!offDiagonal || from + i != j) {
                        sum += k.get(i, j);
                    }
                }
            }
        }
        return sum;
    }

    private static DMatrixRMaj kernel(DMatrixRMaj u, DMatrixRMaj v, int d) {
        DMatrixRMaj k = new DMatrixRMaj(u.numRows, v.numRows);
        CommonOps_DDRM.multTransB(u, v, k);
        for (int i = 0; i < k.data.length; i++) {
            double s = k.data[i] / d + 1;
            k.data[i] = s * s * s;
        }
        return k;
    }
}
