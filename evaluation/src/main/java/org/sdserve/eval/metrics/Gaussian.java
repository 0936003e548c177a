package org.sdserve.eval.metrics;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.CommonOps_MT_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.CholeskyDecomposition_F64;

/**
 * A feature set's Gaussian fit, for FID: the mean, and the covariance's factor F with covariance = F^T F
 * (numpy's np.cov(rowvar=False): the centred vectors over n - 1). F is the centred vectors themselves when there
 * are at most as many as dimensions (the covariance is then singular, and FID's matrix square root is computed in
 * the n-dimensional sample space, where it is exact), else a d x d factor of the covariance (its Cholesky factor).
 */
public record Gaussian(double[] mean, DMatrixRMaj factor, double trace) {

    public static Gaussian of(Features f) {
        DMatrixRMaj x = f.rows();
        int n = x.numRows;
        int d = x.numCols;
        double[] mean = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                mean[j] += x.get(i, j);
            }
        }
        for (int j = 0; j < d; j++) {
            mean[j] /= n;
        }
        DMatrixRMaj centred = new DMatrixRMaj(n, d);
        double scale = 1 / Math.sqrt(n - 1.0);
        double trace = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                double v = (x.get(i, j) - mean[j]) * scale;
                centred.set(i, j, v);
                trace += v * v;
            }
        }
        if (n <= d) {
            return new Gaussian(mean, centred, trace);
        }
        DMatrixRMaj cov = new DMatrixRMaj(d, d);
        CommonOps_MT_DDRM.multTransA(centred, centred, cov);
        return new Gaussian(mean, factorOf(cov), trace);
    }

    /**
     * A factor F with F^T F = cov: the transposed Cholesky factor (n^3 / 3 operations), or, for a covariance that is
     * only semi-definite (a dimension constant, or dependent on others), its symmetric square root.
     */
    private static DMatrixRMaj factorOf(DMatrixRMaj cov) {
        CholeskyDecomposition_F64<DMatrixRMaj> chol = DecompositionFactory_DDRM.chol(cov.numRows, true);
        if (chol.decompose(cov.copy())) {
            return CommonOps_DDRM.transpose(chol.getT(null), null);
        }
        return SymmetricRoots.sqrt(cov);
    }

    public int dimension() {
        return mean.length;
    }
}
