package org.sdserve.common.tensor;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.proto.v1.ElementType;
import org.sdserve.proto.v1.Tensor;

/**
 * {@link FloatTensor} <-> {@code sd.v1.Tensor}: element type, shape, and the raw little-endian row-major
 * bytes. FLOAT16 payloads are accepted and widened to float32.
 */
public final class TensorCodec {
    private TensorCodec() {
    }

    public static Tensor encode(FloatTensor t) {
        ByteBuffer buf = ByteBuffer.allocate(t.data().length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(t.data());
        Tensor.Builder b = Tensor.newBuilder().setElementType(ElementType.FLOAT32)
                .setData(UnsafeByteOperations.unsafeWrap(buf.array()));
        for (long d : t.shape()) {
            b.addShape(d);
        }
        return b.build();
    }

    /**
     * Decodes a float tensor sent by a caller; {@code field} names it in error messages.
     *
     * @throws InvalidRequestException if the type, shape or byte count is not consistent
     */
    /** More dimensions than any tensor of the contract has (latents and hidden states have 3 or 4). */
    static final int MAX_RANK = 8;

    public static FloatTensor decode(Tensor t, String field) {
        InvalidRequestException.require(t.getShapeCount() >= 1 && t.getShapeCount() <= MAX_RANK,
                "%s: a tensor needs 1 to %d dimensions, got %d", field, MAX_RANK, t.getShapeCount());
        long[] shape = t.getShapeList().stream().mapToLong(Long::longValue).toArray();
        long n = 1;
        for (long d : shape) {
            InvalidRequestException.require(d >= 0, "%s: dimensions must be >= 0, got %s", field,
                    Arrays.toString(shape));
            // no overflow: every factor is checked against the bound before the next multiplication
            InvalidRequestException.require(d == 0 || n <= Integer.MAX_VALUE / 4 / d, "%s: shape %s is too many "
                    + "elements (at most %d)", field, Arrays.toString(shape), Integer.MAX_VALUE / 4);
            n *= d;
        }
        int width = switch (t.getElementType()) {
            case FLOAT32 -> 4;
            case FLOAT16 -> 2;
            default -> throw new InvalidRequestException(field + ": element_type must be FLOAT32 or FLOAT16, got "
                    + t.getElementType());
        };
        ByteBuffer bytes = t.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        // the bytes are checked before anything is allocated from the declared shape
        requireBytes(field, shape, bytes.remaining(), n * width, t.getElementType().name());
        float[] out = new float[(int) n];
        if (width == 4) {
            bytes.asFloatBuffer().get(out);
        } else {
            for (int i = 0; i < n; i++) {
                out[i] = Float16.toFloat(bytes.getShort());
            }
        }
        return new FloatTensor(shape, out);
    }

    private static void requireBytes(String field, long[] shape, int got, long want, String type) {
        InvalidRequestException.require(got == want, "%s: shape %s of %s needs %d bytes, got %d", field,
                Arrays.toString(shape), type, want, got);
    }

    /** Shape check for decoded tensors: {@code expected} uses -1 for "any". */
    public static void requireShape(FloatTensor t, String field, long... expected) {
        long[] s = t.shape();
        boolean ok = s.length == expected.length;
        for (int i = 0; ok && i < s.length; i++) {
            ok = expected[i] < 0 || expected[i] == s[i];
        }
        InvalidRequestException.require(ok, "%s: expected shape %s (-1 = any), got %s", field,
                Arrays.toString(expected), Arrays.toString(s));
    }

    /** Convenience for tests and clients: bytes of a FLOAT32 tensor. */
    public static ByteString floatBytes(float... values) {
        ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(values);
        return ByteString.copyFrom(buf.array());
    }
}
