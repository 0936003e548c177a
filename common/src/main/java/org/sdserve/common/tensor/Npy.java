package org.sdserve.common.tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.proto.v1.Tensor;

/**
 * A tensor as a NumPy .npy file (format version 1.0, as numpy.lib.format writes it): the magic, a little-endian
 * uint16 header length, an ASCII dict literal padded with spaces to a multiple of 64 bytes ending in a newline,
 * then the C-order element bytes, which a Tensor already holds little-endian. {@code numpy.load} reads it; and the
 * float32 matrices {@code numpy.save} writes (feature extractors' reference sets), read back.
 */
public final class Npy {
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\((\\d+),\\s*(\\d+),?\\s*\\)");

    private Npy() {
    }

    public static byte[] of(Tensor t) {
        String descr = switch (t.getElementType()) {
            case FLOAT32 -> "<f4";
            case FLOAT16 -> "<f2";
            case INT64 -> "<i8";
            case INT32 -> "<i4";
            case ELEMENT_TYPE_UNSPECIFIED, UNRECOGNIZED -> throw new IllegalArgumentException(
                    "a tensor without an element type: " + t.getElementType());
        };
        String shape = t.getShapeList().stream().map(String::valueOf).collect(Collectors.joining(", "));
        if (t.getShapeCount() == 1) {
            shape += ","; // a Python 1-tuple
        }
        StringBuilder header = new StringBuilder("{'descr': '" + descr + "', 'fortran_order': False, 'shape': ("
                + shape + "), }");
        int prefix = 6 + 2 + 2; // magic, version, header length
        while ((prefix + header.length() + 1) % 64 != 0) {
            header.append(' ');
        }
        header.append('\n');
        byte[] h = header.toString().getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[prefix + h.length + t.getData().size()];
        out[0] = (byte) 0x93;
        System.arraycopy("NUMPY".getBytes(StandardCharsets.US_ASCII), 0, out, 1, 5);
        out[6] = 1; // version 1.0
        out[7] = 0;
        out[8] = (byte) (h.length & 0xff);
        out[9] = (byte) (h.length >>> 8);
        System.arraycopy(h, 0, out, prefix, h.length);
        t.getData().copyTo(out, prefix + h.length);
        return out;
    }

    /** A .npy file of a little-endian float32 ('<f4') C-order matrix, as rows of doubles (exact). */
    public static double[][] readFloat32Matrix(Path file) throws IOException {
        return readFloat32(file).rows();
    }

    /** A .npy file of a little-endian float32 ('<f4') C-order matrix, as a [rows, columns] tensor. */
    public static FloatTensor readFloat32(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        if (all.length < 10 || all[0] != (byte) 0x93 || all[1] != 'N' || all[2] != 'U') {
            throw new ModelContractException(file + ": not a .npy file");
        }
        int major = all[6];
        int headerLength = major == 1 ? Short.toUnsignedInt(b.getShort(8)) : b.getInt(8);
        int start = major == 1 ? 10 : 12;
        String header = new String(all, start, headerLength, StandardCharsets.ISO_8859_1);
        Matcher m = SHAPE.matcher(header);
        if (!header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") || !m.find()) {
            throw new ModelContractException(file + ": expected a C-order float32 matrix, header " + header.trim());
        }
        int rows = Integer.parseInt(m.group(1));
        int cols = Integer.parseInt(m.group(2));
        b.position(start + headerLength);
        if (b.remaining() != (long) rows * cols * 4) {
            throw new ModelContractException(file + ": " + b.remaining() + " data bytes for " + rows + " x " + cols);
        }
        float[] data = new float[rows * cols];
        b.asFloatBuffer().get(data);
        return new FloatTensor(new long[] {rows, cols}, data);
    }
}
