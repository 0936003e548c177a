package org.sdserve.eval.metrics;

import org.ejml.data.DMatrixRMaj;

/**
 * A feature set: n feature vectors of dimension d (an extractor's outputs for n images), row-major in a
 * {@code [n, d]} matrix. The measures compare two of them: real images against generated ones.
 */
public record Features(DMatrixRMaj rows) {
    public Features {
        if (rows.numRows < 2 || rows.numCols < 1) {
            throw new IllegalArgumentException("a feature set needs at least 2 vectors of at least 1 dimension, got "
                    + rows.numRows + " x " + rows.numCols);
        }
    }

    /** From {@code n} vectors of {@code d} values each. */
    public static Features of(double[][] vectors) {
        return new Features(new DMatrixRMaj(vectors));
    }

    public int count() {
        return rows.numRows;
    }

    public int dimension() {
        return rows.numCols;
    }
}
