package org.sdserve.eval.metrics;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_MT_DDRM;

/**
 * Frechet Inception Distance (Heusel et al. 2017) between two Gaussian fits: ||mu1 - mu2||^2 + tr(S1) + tr(S2)
 * - 2 tr((S1 S2)^(1/2)), as pytorch-fid computes it with scipy.linalg.sqrtm. The square root's trace is computed
 * without forming S1 S2 (not symmetric): with S_i = F_i^T F_i, the eigenvalues of S1 S2 are those of the symmetric
 * PSD M = F1 F2^T F2 F1^T, so tr((S1 S2)^(1/2)) = sum sqrt(eig M), exact for singular covariances too (fewer
 * vectors than dimensions), where sqrtm needs pytorch-fid's diagonal offset.
 */
public final class Fid {
    private Fid() {
    }

    public static double distance(Features a, Features b) {
        return distance(Gaussian.of(a), Gaussian.of(b));
    }

    public static double distance(Gaussian a, Gaussian b) {
        if (a.dimension() != b.dimension()) {
            throw new IllegalArgumentException("feature dimensions differ: " + a.dimension() + " and "
                    + b.dimension());
        }
        double meanTerm = 0;
        for (int j = 0; j < a.dimension(); j++) {
            double diff = a.mean()[j] - b.mean()[j];
            meanTerm += diff * diff;
        }
        return meanTerm + a.trace() + b.trace() - 2 * traceSqrtProduct(a.factor(), b.factor());
    }

    /** tr((F1^T F1 F2^T F2)^(1/2)) = sum sqrt(eig(C C^T)), C = F1 F2^T, on the smaller side of C. */
    static double traceSqrtProduct(DMatrixRMaj f1, DMatrixRMaj f2) {
        DMatrixRMaj c = new DMatrixRMaj(f1.numRows, f2.numRows);
        CommonOps_MT_DDRM.multTransB(f1, f2, c);
        DMatrixRMaj m;
        if (c.numRows <= c.numCols) {
            m = new DMatrixRMaj(c.numRows, c.numRows);
            CommonOps_MT_DDRM.multTransB(c, c, m);
        } else {
            m = new DMatrixRMaj(c.numCols, c.numCols);
            CommonOps_MT_DDRM.multTransA(c, c, m);
        }
        return SymmetricRoots.traceOfSqrt(m);
    }
}
