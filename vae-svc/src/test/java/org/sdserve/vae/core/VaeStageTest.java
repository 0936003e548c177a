package org.sdserve.vae.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.testing.DemoModel;

/** The demo model's VAE graphs in real ONNX Runtime sessions, against the PyTorch outputs recorded at export. */
class VaeStageTest {
    private static Vae vae;

    @BeforeAll
    static void load() {
        vae = Vae.load(DemoModel.directory(), ExecutionOptions.CPU);
    }

    @AfterAll
    static void close() {
        vae.close();
    }

    @Test
    void decoderMatchesPyTorch() {
        // the graph input is pattern([1,4,8,8], 0.05); decodePixels divides by scaling_factor first
        FloatTensor p = DemoModel.pattern(new long[] {1, 4, 8, 8}, 0.05);
        float[] d = p.data();
        for (int i = 0; i < d.length; i++) {
            d[i] *= vae.scalingFactor();
        }
        DemoModel.assertMatches(DemoModel.reference().get("vae_decoder").get("sample"), vae.decodePixels(p), 1e-4,
                "vae_decoder sample");
    }

    @Test
    void encodeThenDecodeKeepsAFlatImage() {
        byte[] rgb = new byte[64 * 64 * 3];
        for (int i = 0; i < 64 * 64; i++) {
            rgb[i * 3] = (byte) 220;
            rgb[i * 3 + 1] = 30;
            rgb[i * 3 + 2] = 30;
        }
        RgbImage red = new RgbImage(64, 64, rgb);
        FloatTensor latents = vae.encode(List.of(red), null);
        assertArrayEquals(new long[] {1, 4, 8, 8}, latents.shape());
        RgbImage back = vae.decode(latents).get(0);
        assertEquals(64, back.width());
        assertTrue(Math.abs(back.red(32, 32) - 220) < 40 && back.green(32, 32) < 80, "red stays red");
    }

    @Test
    void refusesBadShapes() {
        assertThrows(InvalidRequestException.class, () -> vae.decode(FloatTensor.zeros(1, 3, 8, 8)));
        assertThrows(InvalidRequestException.class, () -> vae.encode(List.of(new RgbImage(60, 64,
                new byte[60 * 64 * 3])), null));
        assertTrue(assertThrows(InvalidRequestException.class, () -> vae.encode(List.of(new RgbImage(64, 64,
                new byte[64 * 64 * 3]), new RgbImage(32, 32, new byte[32 * 32 * 3])), null)).getMessage()
                .contains("same size"));
    }

    @Test
    void encoderGraphMatchesPyTorch() {
        DemoModel.assertMatches(DemoModel.reference().get("vae_encoder").get("latent_parameters"),
                vae.runEncoder(DemoModel.pattern(new long[] {1, 3, 64, 64}, 0.01), "latent_parameters"), 1e-4,
                "latent_parameters");
    }
}
