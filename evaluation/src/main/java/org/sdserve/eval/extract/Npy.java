package org.sdserve.eval.extract;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.sdserve.common.error.ModelContractException;

/** Reads a NumPy .npy file of little-endian float32 ('<f4'), C order, rank 2: what extractors' reference sets are. */
final class Npy {
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\((\\d+),\\s*(\\d+),?\\s*\\)");

    private Npy() {
    }

    static double[][] readFloat32Matrix(Path file) throws IOException {
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
        double[][] out = new double[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                out[i][j] = b.getFloat();
            }
        }
        return out;
    }
}
