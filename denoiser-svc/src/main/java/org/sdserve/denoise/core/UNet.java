package org.sdserve.denoise.core;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;
import java.util.Map;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.onnx.OnnxModel;
import org.sdserve.common.tensor.FloatTensor;

/**
 * The noise-prediction UNet ({@code unet/model.onnx}). Contract: {@code sample} float [B,4,h,w] (inpainting
 * UNets: [B,9,h,w], the latents, the mask and the masked image's latents);
 * {@code timestep} in whichever form the exporter chose (float rank-0 for optimum >= 1.24, int64 [B] for
 * optimum 1.6-1.23 and the old diffusers script, float [B] for diffusers >= 0.9); {@code encoder_hidden_states}
 * float [B,77,W]; output {@code out_sample} [B,4,h,w].
 */
public final class UNet implements AutoCloseable {
    private final OnnxModel model;
    private final TensorInfo timestep;
    private final int latentChannels;
    private final int inputChannels;
    private final int contextWidth;
    private final int contextLength; // -1: the graph takes any number of tokens
    private volatile CallObserver observer = (rows, nanos) -> { };

    /** Hears of every session.run: its rows (batch) and how long it took (the app records them as metrics). */
    @FunctionalInterface
    public interface CallObserver {
        void called(int rows, long nanos);
    }

    public void observe(CallObserver o) {
        observer = o;
    }
    private static final String OUTPUT = "out_sample";

    private UNet(OnnxModel model) {
        this.model = model;
        TensorInfo sample = model.requireInput("sample", 4, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16);
        long channels = OnnxModel.staticDim(sample, 1);
        // an inpainting UNet takes 9: the latents (4), the mask (1) and the masked image's latents (4)
        this.inputChannels = channels > 0 ? (int) channels : 4;
        this.latentChannels = inputChannels == 9 ? 4 : inputChannels;
        TensorInfo ts = model.input("timestep");
        if (ts.getShape().length > 1) {
            throw new ModelContractException("unet: input \"timestep\" must be a scalar or [B], the graph declares "
                    + Arrays.toString(ts.getShape()));
        }
        model.requireInput("timestep", ts.getShape().length, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16,
                OnnxJavaType.INT64, OnnxJavaType.INT32);
        this.timestep = ts;
        TensorInfo ctx = model.requireInput("encoder_hidden_states", 3, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16);
        this.contextWidth = (int) OnnxModel.staticDim(ctx, 2);
        this.contextLength = (int) OnnxModel.staticDim(ctx, 1);
        model.requireOutput(OUTPUT, 4, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16);
    }

    public static UNet load(ModelDirectory dir, ExecutionOptions opts) {
        OnnxModel model = OnnxModel.open(dir.component("unet"), "unet", opts);
        try {
            return new UNet(model);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    public int latentChannels() {
        return latentChannels;
    }

    /** Channels of its {@code sample} input: latentChannels, or 2 x latentChannels + 1 for an inpainting UNet. */
    public int inputChannels() {
        return inputChannels;
    }

    /** Whether this is an inpainting UNet (sample = [latents, mask, masked-image latents]: 9 channels for SD). */
    public boolean inpaints() {
        return inputChannels == 2 * latentChannels + 1;
    }

    /** Width W of encoder_hidden_states the graph declares, or -1 if symbolic. */
    /** Tokens per row of encoder_hidden_states the graph declares, -1 when any (a dynamic dimension). */
    public int contextLength() {
        return contextLength;
    }

    public int contextWidth() {
        return contextWidth;
    }

    /**
     * True when the graph's {@code timestep} has a batch dimension, so that the rows of one call may be at
     * different timesteps; false for a rank-0 timestep (optimum >= 1.24), where one call is one timestep.
     */
    public boolean perRowTimestep() {
        return timestep.getShape().length == 1;
    }

    /** Predicts the model output (noise for epsilon models) for a batch at one timestep. */
    public FloatTensor predict(FloatTensor sample, double t, FloatTensor context) {
        double[] rows = new double[sample.dim(0)];
        Arrays.fill(rows, t);
        return predict(sample, rows, context);
    }

    /**
     * Predicts the model output for a batch whose row i is at timestep {@code t[i]}: sample [B,C,h,w],
     * context [B,77,W] -> [B,C,h,w]. Rows may differ in timestep only where {@link #perRowTimestep()}.
     */
    public FloatTensor predict(FloatTensor sample, double[] t, FloatTensor context) {
        int batch = sample.dim(0);
        if (t.length != batch) {
            throw new IllegalArgumentException("one timestep per row: " + batch + " rows, " + t.length + " timesteps");
        }
        long t0 = System.nanoTime();
        try (OnnxTensor x = model.floatInput("sample", sample);
             OnnxTensor ts = timestepTensor(t);
             OnnxTensor ctx = model.floatInput("encoder_hidden_states", context);
             OrtSession.Result r = model.run(Map.of("sample", x, "timestep", ts, "encoder_hidden_states", ctx))) {
            FloatTensor out = model.floatOutput(r, OUTPUT);
            observer.called(batch, System.nanoTime() - t0);
            return out;
        } catch (OrtException e) {
            throw new IllegalStateException("unet: ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    /** The timesteps in the declared type and rank: [B] one per row, or a scalar (all rows must agree). */
    private OnnxTensor timestepTensor(double[] t) throws OrtException {
        if (!perRowTimestep()) {
            for (double v : t) {
                if (v != t[0]) {
                    throw new IllegalArgumentException("this UNet takes one timestep per call (rank-0 timestep), "
                            + "got rows at " + t[0] + " and " + v);
                }
            }
        }
        long[] shape = perRowTimestep() ? new long[] {t.length} : new long[0];
        int n = perRowTimestep() ? t.length : 1;
        return switch (timestep.type) {
            case INT64 -> {
                long[] v = new long[n];
                for (int i = 0; i < n; i++) {
                    v[i] = Math.round(t[i]);
                }
                yield OnnxTensor.createTensor(model.env(), LongBuffer.wrap(v), shape);
            }
            case INT32 -> {
                int[] v = new int[n];
                for (int i = 0; i < n; i++) {
                    v[i] = (int) Math.round(t[i]);
                }
                yield OnnxTensor.createTensor(model.env(), IntBuffer.wrap(v), shape);
            }
            default -> { // FLOAT or FLOAT16
                float[] v = new float[n];
                for (int i = 0; i < n; i++) {
                    v[i] = (float) t[i];
                }
                yield model.floatInput("timestep", new FloatTensor(shape, v));
            }
        };
    }

    @Override
    public void close() {
        model.close();
    }
}
