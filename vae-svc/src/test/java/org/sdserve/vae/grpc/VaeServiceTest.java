package org.sdserve.vae.grpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.proto.v1.VaeEncodeRequest;
import org.sdserve.proto.v1.VaeGrpc;
import org.sdserve.vae.core.Vae;

/** Vae.Encode over a real gRPC channel (in-process transport) on the demo model's encoder. */
class VaeServiceTest {
    private static Vae vae;
    private static ServiceHost host;
    private static ManagedChannel channel;
    private static VaeGrpc.VaeBlockingStub stub;

    @BeforeAll
    static void start() {
        vae = Vae.load(DemoModel.directory(), ExecutionOptions.CPU);
        host = ServiceHost.inProcess("vae-service-test", 64 << 20,
                List.of(new VaeService(vae, TorchGenerator.Kernel.AVX2)));
        host.serving();
        channel = InProcessChannelBuilder.forName("vae-service-test").build();
        stub = VaeGrpc.newBlockingStub(channel);
    }

    @AfterAll
    static void stop() {
        channel.shutdownNow();
        host.close();
        vae.close();
    }

    /** A 64x64 picture: a coloured square on another colour, different per variant. */
    private static ByteString png(int variant) {
        byte[] rgb = new byte[64 * 64 * 3];
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 64; x++) {
                boolean inside = x >= 16 && x < 48 && y >= 16 && y < 48;
                int i = (y * 64 + x) * 3;
                rgb[i] = (byte) (inside ? 200 : 20 + 40 * variant);
                rgb[i + 1] = (byte) (inside ? 60 * variant : 180);
                rgb[i + 2] = (byte) (inside ? 40 : 90);
            }
        }
        return ByteString.copyFrom(new RgbImage(64, 64, rgb).toPng());
    }

    private static FloatTensor encode(Long seed, ByteString... pngs) {
        VaeEncodeRequest.Builder b = VaeEncodeRequest.newBuilder().addAllPng(Arrays.asList(pngs));
        if (seed != null) {
            b.setSeed(seed);
        }
        return TensorCodec.decode(stub.encode(b.build()).getLatents(), "latents");
    }

    @Test
    void unseededEncodeIsThePosteriorMean() {
        FloatTensor mean = encode(null, png(1));
        assertArrayEquals(new long[] {1, 4, 8, 8}, mean.shape());
        assertArrayEquals(vae.encode(List.of(RgbImage.fromPng(png(1).toByteArray(), "png")), null).data(),
                mean.data());
    }

    @Test
    void seededEncodeSamplesThePosteriorWithTorchNoise() {
        // diffusers' DiagonalGaussianDistribution.sample: mean + exp(0.5 clamp(logvar, -30, 20)) * randn, the
        // randn from torch.Generator().manual_seed(seed), all times scaling_factor.
        FloatTensor sampled = encode(7L, png(1));
        FloatTensor params = vae.runEncoder(pixels(png(1)), "latent_parameters"); // [1, 8, 8, 8]: mean, logvar
        FloatTensor z = new NoiseSource(new long[] {7}, TorchGenerator.Kernel.AVX2).randn(new long[] {1, 4, 8, 8});
        float[] p = params.data();
        float[] s = sampled.data();
        for (int k = 0; k < 4 * 64; k++) {
            float logvar = Math.max(-30f, Math.min(20f, p[4 * 64 + k]));
            float want = (p[k] + (float) Math.exp(0.5 * logvar) * z.data()[k]) * vae.scalingFactor();
            assertEquals(want, s[k], 1e-6f, "element " + k);
        }
        assertArrayEquals(s, encode(7L, png(1)).data(), "same seed, same latents");
        assertFalse(Arrays.equals(s, encode(8L, png(1)).data()), "another seed, other latents");
        assertFalse(Arrays.equals(s, encode(null, png(1)).data()), "a sample is not the mean");
    }

    @Test
    void eachImageOfABatchGetsItsOwnSeed() {
        // image i of a request with seed s is sampled with seed s + i: the same as encoding it alone with s + i
        FloatTensor batch = encode(100L, png(1), png(2));
        assertArrayEquals(new long[] {2, 4, 8, 8}, batch.shape());
        float[] b = batch.data();
        assertArrayEquals(encode(100L, png(1)).data(), Arrays.copyOfRange(b, 0, 256));
        assertArrayEquals(encode(101L, png(2)).data(), Arrays.copyOfRange(b, 256, 512));
    }

    /** A mask: white (repaint) in the left half, black elsewhere. */
    private static ByteString leftHalf() {
        byte[] rgb = new byte[64 * 64 * 3];
        for (int i = 0; i < 64 * 64; i++) {
            byte v = (byte) (i % 64 < 32 ? 255 : 0);
            rgb[i * 3] = v;
            rgb[i * 3 + 1] = v;
            rgb[i * 3 + 2] = v;
        }
        return ByteString.copyFrom(new RgbImage(64, 64, rgb).toPng());
    }

    @Test
    void theMaskedImageAndLaterDrawsForInpaintingUNets() {
        // mask_png zeroes the masked pixels in [-1, 1] (diffusers' image * (mask < 0.5)) before encoding
        FloatTensor masked = TensorCodec.decode(stub.encode(VaeEncodeRequest.newBuilder().addPng(png(1))
                .setMaskPng(leftHalf()).build()).getLatents(), "latents");
        float[] px = pixels(png(1)).data();
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < 64 * 64; i++) {
                if (i % 64 < 32) {
                    px[c * 64 * 64 + i] = 0f;
                }
            }
        }
        FloatTensor params = vae.runEncoder(new FloatTensor(new long[] {1, 3, 64, 64}, px), "latent_parameters");
        for (int k = 0; k < 4 * 64; k++) {
            assertEquals(params.data()[k] * vae.scalingFactor(), masked.data()[k], 1e-6f, "element " + k);
        }
        // skip_draws 2: the sample is each generator's third draw
        FloatTensor third = TensorCodec.decode(stub.encode(VaeEncodeRequest.newBuilder().addPng(png(1)).setSeed(7)
                .setSkipDraws(2).build()).getLatents(), "latents");
        NoiseSource n = new NoiseSource(new long[] {7}, TorchGenerator.Kernel.AVX2);
        n.randn(new long[] {1, 4, 8, 8});
        n.randn(new long[] {1, 4, 8, 8});
        assertArrayEquals(vae.encode(List.of(RgbImage.fromPng(png(1).toByteArray(), "png")), n.randn(
                new long[] {1, 4, 8, 8})).data(), third.data());
        assertRefused(VaeEncodeRequest.newBuilder().addPng(png(1)).setSkipDraws(1).build(), "skip_draws goes with seed");
    }

    @Test
    void badRequestsGetInvalidArgument() {
        assertRefused(VaeEncodeRequest.newBuilder().build(), "between 1 and");
        assertRefused(VaeEncodeRequest.newBuilder().addPng(ByteString.copyFromUtf8("not a png")).build(), "png[0]");
        byte[] odd = new RgbImage(60, 64, new byte[60 * 64 * 3]).toPng();
        assertRefused(VaeEncodeRequest.newBuilder().addPng(ByteString.copyFrom(odd)).setSeed(1).build(),
                "multiple of 8");
    }

    private static void assertRefused(VaeEncodeRequest request, String message) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> stub.encode(request));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getMessage());
        assertTrue(e.getStatus().getDescription().contains(message), e.getStatus().getDescription());
    }

    private static FloatTensor pixels(ByteString png) {
        RgbImage img = RgbImage.fromPng(png.toByteArray(), "png");
        float[] px = new float[3 * 64 * 64];
        img.toSignedUnit(px, 0);
        return new FloatTensor(new long[] {1, 3, 64, 64}, px);
    }

    @Test
    void aDecodeWhoseCallerHasGoneStopsInsteadOfComputingForNobody() throws Exception {
        // eight 1024x1024 images: 9.5 s of decoding on 2 cores (measured once; not repeated here)
        FloatTensor big = DemoModel.pattern(new long[] {8, 4, 128, 128}, 0.1);
        long before = vae.runsGivenUp();
        long t0 = System.nanoTime();
        // 1 s: time for the call to reach the decoder on a loaded machine (200 ms once passed before it began)
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> stub
                .withDeadlineAfter(1000, java.util.concurrent.TimeUnit.MILLISECONDS)
                .decode(org.sdserve.proto.v1.DecodeRequest.newBuilder().setLatents(TensorCodec.encode(big)).build()));
        assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
        long until = System.nanoTime() + 60_000_000_000L;
        while (vae.runsGivenUp() == before) { // the decoder's run was terminated, not finished
            assertTrue(System.nanoTime() < until, "the decode went on after its caller had gone");
            Thread.sleep(5);
        }
        System.out.printf("vae: a decode of 8 x 1024x1024 with a 1 s deadline stopped %d ms after the call "
                + "began%n", (System.nanoTime() - t0) / 1_000_000);
        // the service is fine afterwards
        assertEquals(1, stub.decode(org.sdserve.proto.v1.DecodeRequest.newBuilder()
                .setLatents(TensorCodec.encode(DemoModel.pattern(new long[] {1, 4, 8, 8}, 0.1))).build()).getPngCount());
    }
}
