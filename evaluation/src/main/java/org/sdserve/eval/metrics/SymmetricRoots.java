package org.sdserve.eval.metrics;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;

/** Symmetric positive semi-definite matrices through their eigendecomposition (negative round-off clipped to 0). */
final class SymmetricRoots {
    private SymmetricRoots() {
    }

    /** S^(1/2) = V diag(sqrt(max(lambda, 0))) V^T. */
    static DMatrixRMaj sqrt(DMatrixRMaj s) {
        int d = s.numRows;
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(d, true, true);
        if (!eig.decompose(s.copy())) {
            throw new ArithmeticException("the covariance's eigendecomposition did not converge");
        }
        DMatrixRMaj v = new DMatrixRMaj(d, d);
        DMatrixRMaj scaled = new DMatrixRMaj(d, d);
        for (int k = 0; k < d; k++) {
            DMatrixRMaj vk = eig.getEigenVector(k);
            double r = Math.sqrt(Math.max(0, eig.getEigenvalue(k).getReal()));
            for (int i = 0; i < d; i++) {
                v.set(i, k, vk.get(i));
                scaled.set(i, k, vk.get(i) * r);
            }
        }
        DMatrixRMaj out = new DMatrixRMaj(d, d);
        CommonOps_DDRM.multTransB(scaled, v, out);
        return out;
    }

    /** The sum of sqrt(max(lambda, 0)) over the eigenvalues of a symmetric PSD matrix: tr(M^(1/2)). */
    static double traceOfSqrt(DMatrixRMaj m) {
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(m.numRows, false, true);
        if (!eig.decompose(m.copy())) {
            throw new ArithmeticException("an eigendecomposition did not converge");
        }
        double sum = 0;
        for (int k = 0; k < m.numRows; k++) {
            sum += Math.sqrt(Math.max(0, eig.getEigenvalue(k).getReal()));
        }
        return sum;
    }
}
