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
 * The noise-prediction UNet ({@code unet/model.onnx}). Contract: {@code sample} float [B,4,h,w];
 * {@code timestep} in whichever form the exporter chose (float rank-0 for optimum >= 1.24, int64 [B] for
 * optimum 1.6-1.23 and the old diffusers script, float [B] for diffusers >= 0.9); {@code encoder_hidden_states}
 * float [B,77,W]; output {@code out_sample} [B,4,h,w].
 */
public final class UNet implements AutoCloseable {
    private final OnnxModel model;
    private final TensorInfo timestep;
    private final int latentChannels;
    private final int contextWidth;
    private static final String OUTPUT = "out_sample";

    private UNet(OnnxModel model) {
        this.model = model;
        TensorInfo sample = model.requireInput("sample", 4, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16);
        long channels = OnnxModel.staticDim(sample, 1);
        if (channels == 9) {
            throw new ModelContractException("unet: this is an inpainting UNet (9 input channels), which this "
                    + "service does not serve yet; point it at a text-to-image export");
        }
        this.latentChannels = channels > 0 ? (int) channels : 4;
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

    /** Width W of encoder_hidden_states the graph declares, or -1 if symbolic. */
    public int contextWidth() {
        return contextWidth;
    }

    /** Predicts the model output (noise for epsilon models) for a batch at one timestep. */
    public FloatTensor predict(FloatTensor sample, double t, FloatTensor context) {
        int batch = sample.dim(0);
        try (OnnxTensor x = model.floatInput("sample", sample);
             OnnxTensor ts = timestepTensor(t, batch);
             OnnxTensor ctx = model.floatInput("encoder_hidden_states", context);
             OrtSession.Result r = model.run(Map.of("sample", x, "timestep", ts, "encoder_hidden_states", ctx))) {
            return model.floatOutput(r, OUTPUT);
        } catch (OrtException e) {
            throw new IllegalStateException("unet: ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    /** The timestep in the declared type and rank: a scalar, or [B] (the value repeated). */
    private OnnxTensor timestepTensor(double t, int batch) throws OrtException {
        long[] shape = timestep.getShape().length == 0 ? new long[0] : new long[] {batch};
        int n = shape.length == 0 ? 1 : batch;
        return switch (timestep.type) {
            case INT64 -> {
                long[] v = new long[n];
                Arrays.fill(v, Math.round(t));
                yield OnnxTensor.createTensor(model.env(), LongBuffer.wrap(v), shape);
            }
            case INT32 -> {
                int[] v = new int[n];
                Arrays.fill(v, (int) Math.round(t));
                yield OnnxTensor.createTensor(model.env(), IntBuffer.wrap(v), shape);
            }
            default -> { // FLOAT or FLOAT16
                float[] v = new float[n];
                Arrays.fill(v, (float) t);
                yield model.floatInput("timestep", new FloatTensor(shape, v));
            }
        };
    }

    @Override
    public void close() {
        model.close();
    }
}
