package org.sdserve.orchestrator.http;

import java.nio.charset.StandardCharsets;
import java.util.stream.Collectors;
import org.sdserve.proto.v1.Tensor;

/**
 * A tensor as a NumPy .npy file (format version 1.0, as numpy.lib.format writes it): the magic, a little-endian
 * uint16 header length, an ASCII dict literal padded with spaces to a multiple of 64 bytes ending in a newline,
 * then the C-order element bytes, which a Tensor already holds little-endian. {@code numpy.load} reads it.
 */
final class Npy {
    private Npy() {
    }

    static byte[] of(Tensor t) {
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
}
