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
}
