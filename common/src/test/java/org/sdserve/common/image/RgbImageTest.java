package org.sdserve.common.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.tensor.FloatTensor;

class RgbImageTest {
    @Test
    void mapsSignedUnitToBytesLikeDiffusers() {
        // diffusers VaeImageProcessor: (x / 2 + 0.5).clamp(0, 1) * 255, rounded
        FloatTensor t = new FloatTensor(new long[] {1, 3, 1, 2}, new float[] {-1f, 1f, 0f, 2f, -5f, 0.5f});
        RgbImage img = RgbImage.fromSignedUnit(t, 0);
        assertEquals(0, img.red(0, 0));
        assertEquals(128, img.green(0, 0)); // 127.5 rounds half up
        assertEquals(0, img.blue(0, 0));
        assertEquals(255, img.red(1, 0));
        assertEquals(255, img.green(1, 0));
        assertEquals(191, img.blue(1, 0));
    }

    @Test
    void pngRoundTripIsLossless() {
        byte[] rgb = new byte[4 * 3 * 3];
        for (int i = 0; i < rgb.length; i++) {
            rgb[i] = (byte) (i * 37);
        }
        RgbImage img = new RgbImage(4, 3, rgb);
        byte[] png = img.toPng();
        assertEquals((byte) 0x89, png[0]);
        assertEquals('P', png[1]);
        RgbImage back = RgbImage.fromPng(png, "png");
        assertEquals(4, back.width());
        assertArrayEquals(rgb, back.rgb());
        assertArrayEquals(png, img.toPng(), "encoding is deterministic");
    }

    @Test
    void refusesNonImages() {
        assertThrows(InvalidRequestException.class, () -> RgbImage.fromPng(new byte[] {1, 2, 3}, "init_image"));
    }

    /** A PNG whose header declares {@code w x h}, with one tiny (not matching) data chunk. */
    private static byte[] declaring(int w, int h) throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        java.nio.ByteBuffer ihdr = java.nio.ByteBuffer.allocate(13).putInt(w).putInt(h).put((byte) 8).put((byte) 2)
                .put((byte) 0).put((byte) 0).put((byte) 0);
        chunk(out, "IHDR", ihdr.array());
        chunk(out, "IDAT", new byte[] {0x78, (byte) 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void chunk(java.io.ByteArrayOutputStream out, String type, byte[] data) throws Exception {
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(type.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        crc.update(data);
        out.write(java.nio.ByteBuffer.allocate(4).putInt(data.length).array());
        out.write(type.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        out.write(data);
        out.write(java.nio.ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    @Test
    void aSmallFileDeclaringAHugeImageIsRefusedFromItsHeader() throws Exception {
        byte[] png = declaring(20000, 20000);
        long t0 = System.nanoTime();
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> RgbImage.fromPng(png, "init_image"));
        org.junit.jupiter.api.Assertions.assertEquals("init_image: images up to 4096 x 4096 are accepted, this one "
                + "declares 20000 x 20000", e.getMessage());
        System.out.printf("a %d-byte PNG declaring 20000x20000 refused in %.1f ms%n", png.length,
                (System.nanoTime() - t0) / 1e6);
    }
}
