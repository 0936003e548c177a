package org.sdserve.common.tensor;

import java.util.Arrays;

/**
 * A dense row-major float32 tensor: the currency of the stage cores. Immutable by convention: the
 * array is shared, not copied, so whoever builds one hands it over.
 */
public final class FloatTensor {
    private final long[] shape;
    private final float[] data;

    public FloatTensor(long[] shape, float[] data) {
        long n = elementCount(shape);
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n
                    + " elements, got " + data.length);
        }
        this.shape = shape.clone();
        this.data = data;
    }

    public static FloatTensor zeros(long... shape) {
        return new FloatTensor(shape, new float[Math.toIntExact(elementCount(shape))]);
    }

    public static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int i) {
        return Math.toIntExact(shape[i]);
    }

    /** The backing array (not a copy). */
    public float[] data() {
        return data;
    }

    /** Elements per item of the leading (batch) dimension. */
    public int itemSize() {
        return shape[0] == 0 ? 0 : data.length / dim(0);
    }

    /** Items [from, to) of the leading dimension, copied. */
    public FloatTensor slice(int from, int to) {
        long[] s = shape.clone();
        s[0] = to - from;
        return new FloatTensor(s, Arrays.copyOfRange(data, from * itemSize(), to * itemSize()));
    }

    /** This tensor's items repeated {@code times} along the leading dimension: [a,b] x 2 -> [a,b,a,b]. */
    public FloatTensor tile(int times) {
        long[] s = shape.clone();
        s[0] *= times;
        float[] out = new float[data.length * times];
        for (int i = 0; i < times; i++) {
            System.arraycopy(data, 0, out, i * data.length, data.length);
        }
        return new FloatTensor(s, out);
    }

    /** Concatenation along the leading dimension; the other dimensions must agree. */
    public static FloatTensor concat(FloatTensor a, FloatTensor b) {
        return concat(java.util.List.of(a, b));
    }

    /** Concatenation of one or more tensors along the leading dimension; the other dimensions must agree. */
    public static FloatTensor concat(java.util.List<FloatTensor> parts) {
        FloatTensor first = parts.get(0);
        if (parts.size() == 1) {
            return first;
        }
        long[] s = first.shape.clone();
        s[0] = 0;
        int length = 0;
        for (FloatTensor p : parts) {
            if (!Arrays.equals(first.shape, 1, first.shape.length, p.shape, 1, p.shape.length)) {
                throw new IllegalArgumentException("cannot concatenate " + Arrays.toString(first.shape) + " and "
                        + Arrays.toString(p.shape));
            }
            length += p.data.length;
            s[0] += p.shape[0];
        }
        float[] out = new float[length];
        int at = 0;
        for (FloatTensor p : parts) {
            System.arraycopy(p.data, 0, out, at, p.data.length);
            at += p.data.length;
        }
        return new FloatTensor(s, out);
    }

    /** A [n, d] tensor's rows, as doubles (exact: every float is a double). */
    public double[][] rows() {
        if (shape.length != 2) {
            throw new IllegalArgumentException("rows() needs a [n, d] tensor, got " + Arrays.toString(shape));
        }
        int n = dim(0);
        int d = dim(1);
        double[][] out = new double[n][d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                out[i][j] = data[i * d + j];
            }
        }
        return out;
    }

    /** n rows of d values as a [n, d] tensor, each value rounded to float32 (exact for values that came from one). */
    public static FloatTensor ofRows(double[][] rows) {
        int d = rows.length == 0 ? 0 : rows[0].length;
        float[] data = new float[rows.length * d];
        for (int i = 0; i < rows.length; i++) {
            for (int j = 0; j < d; j++) {
                data[i * d + j] = (float) rows[i][j];
            }
        }
        return new FloatTensor(new long[] {rows.length, d}, data);
    }

    @Override
    public String toString() {
        return "FloatTensor" + Arrays.toString(shape);
    }
}
