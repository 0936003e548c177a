package org.sdserve.denoise.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;

/**
 * The UNet adapts to the timestep and float types exporters use: tiny graphs from tools/goldens/tiny_graphs.py
 * whose out_sample = sample * timestep, so the value the graph received is visible.
 */
class UNetContractTest {
    private static ModelDirectory tiny(String name) throws Exception {
        return ModelDirectory.open(Path.of(UNetContractTest.class.getResource("/tiny/" + name).toURI()));
    }

    private static FloatTensor ones() {
        float[] d = new float[2 * 4 * 2 * 2];
        java.util.Arrays.fill(d, 1.5f);
        return new FloatTensor(new long[] {2, 4, 2, 2}, d);
    }

    @Test
    void int64BatchTimestep() throws Exception {
        try (UNet unet = UNet.load(tiny("unet-int64-timestep"), ExecutionOptions.CPU)) {
            FloatTensor out = unet.predict(ones(), 981, FloatTensor.zeros(2, 77, 8));
            for (float v : out.data()) {
                assertEquals(1.5f * 981, v);
            }
            assertEquals(8, unet.contextWidth());
        }
    }

    @Test
    void float16ScalarTimestepAndTensors() throws Exception {
        try (UNet unet = UNet.load(tiny("unet-fp16"), ExecutionOptions.CPU)) {
            FloatTensor out = unet.predict(ones(), 7, FloatTensor.zeros(2, 77, 8));
            assertEquals(32, out.data().length);
            for (float v : out.data()) {
                assertEquals(10.5f, v); // exact in float16
            }
        }
    }

    /**
     * An inpainting UNet (9 input channels): 4 latent channels, and the run's input puts the latents, the mask and
     * the masked image's latents in that order (diffusers' torch.cat([latents, mask, masked_image_latents], 1)):
     * the tiny graph's out_sample = latents * t + mask + 10 * masked shows each in its place.
     */
    @Test
    void anInpaintingUNetTakesLatentsMaskAndMaskedImageLatents() throws Exception {
        try (UNet unet = UNet.load(tiny("unet-inpaint"), ExecutionOptions.CPU)) {
            assertEquals(4, unet.latentChannels());
            assertEquals(9, unet.inputChannels());
            assertTrue(unet.inpaints());
            int plane = 4; // 2 x 2
            float[] lat = new float[2 * 4 * plane];
            float[] masked = new float[2 * 4 * plane];
            for (int i = 0; i < lat.length; i++) {
                lat[i] = i;
                masked[i] = 100 + i;
            }
            FloatTensor mask = new FloatTensor(new long[] {1, 1, 2, 2}, new float[] {1, 0, 0, 1});
            FloatTensor input = new DenoiseRun.InpaintingInput(mask, new FloatTensor(new long[] {2, 4, 2, 2}, masked))
                    .concat(new FloatTensor(new long[] {2, 4, 2, 2}, lat));
            assertArrayEquals(new long[] {2, 9, 2, 2}, input.shape());
            FloatTensor out = unet.predict(input, 3, FloatTensor.zeros(2, 77, 8));
            for (int b = 0; b < 2; b++) {
                for (int c = 0; c < 4; c++) {
                    for (int p = 0; p < plane; p++) {
                        int k = (b * 4 + c) * plane + p;
                        assertEquals(lat[k] * 3 + mask.data()[p] + 10 * masked[k], out.data()[k], "b" + b + " c" + c);
                    }
                }
            }
        }
    }

    @Test
    void aMissingInputIsRefusedWithWhatTheGraphHas() throws Exception {
        ModelContractException e = assertThrows(ModelContractException.class,
                () -> UNet.load(tiny("unet-no-timestep"), ExecutionOptions.CPU));
        assertTrue(e.getMessage().contains("unet: the graph has no input \"timestep\"; it has inputs: sample FLOAT"),
                e.getMessage());
        assertTrue(e.getMessage().contains("t INT64[-1]"), e.getMessage());
    }

    @Test
    void aMissingGraphIsRefusedWithTheExpectedLayout(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        java.nio.file.Files.createDirectories(dir.resolve("unet"));
        ModelContractException e = assertThrows(ModelContractException.class,
                () -> UNet.load(ModelDirectory.open(dir), ExecutionOptions.CPU));
        assertTrue(e.getMessage().contains("unet: no graph at"), e.getMessage());
    }
}
