package org.sdserve.eval.metrics;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;

/**
 * Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic
 * polynomial kernel k(x, y) = (x.y / d + 1)^3, over all pairs of the two whole sets (clean-fid and torch-fidelity
 * average it over random subsets of 1000; this is the same estimator without the subsets).
 */
public final class Kid {
    private Kid() {
    }

    public static double of(Features a, Features b) {
        if (a.dimension() != b.dimension()) {
            throw new IllegalArgumentException("feature dimensions differ: " + a.dimension() + " and "
                    + b.dimension());
        }
        int d = a.dimension();
        double xx = offDiagonalMean(kernel(a.rows(), a.rows(), d));
        double yy = offDiagonalMean(kernel(b.rows(), b.rows(), d));
        DMatrixRMaj xy = kernel(a.rows(), b.rows(), d);
        double cross = 0;
        for (double v : xy.data) {
            cross += v;
        }
        return xx + yy - 2 * cross / ((double) a.count() * b.count());
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

    private static double offDiagonalMean(DMatrixRMaj k) {
        int n = k.numRows;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i != j) {
                    sum += k.get(i, j);
                }
            }
        }
        return sum / ((double) n * (n - 1));
    }
}
