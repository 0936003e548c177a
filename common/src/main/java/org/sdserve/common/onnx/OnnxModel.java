package org.sdserve.common.onnx;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.tensor.Float16;
import org.sdserve.common.tensor.FloatTensor;

/**
 * One ONNX graph and the session that owns it. Opened from the file path (so external data such as
 * {@code model.onnx_data} or {@code weights.pb} beside it is found), closed once by its owner.
 * Inputs and outputs are read from the session and checked by the stage at start-up.
 */
public final class OnnxModel implements AutoCloseable {
    private final String component;
    private final OrtEnvironment env;
    private final OrtSession session;
    private final Map<String, TensorInfo> inputs;
    private final Map<String, TensorInfo> outputs;

    private OnnxModel(String component, OrtEnvironment env, OrtSession session) throws OrtException {
        this.component = component;
        this.env = env;
        this.session = session;
        this.inputs = tensorInfos(session.getInputInfo());
        this.outputs = tensorInfos(session.getOutputInfo());
    }

    /** Opens {@code dir/model.onnx}; {@code component} ("unet", ...) names it in messages. */
    public static OnnxModel open(Path dir, String component, ExecutionOptions opts) {
        Path file = dir.resolve("model.onnx");
        if (!Files.isRegularFile(file)) {
            throw new ModelContractException(component + ": no graph at " + file
                    + " (expected the Stable Diffusion ONNX layout: <model>/" + component + "/model.onnx)");
        }
        OrtEnvironment env = OrtRuntime.environment(opts);
        try (OrtSession.SessionOptions so = OrtRuntime.sessionOptions(opts, component)) {
            OrtSession session = env.createSession(file.toString(), so);
            try {
                return new OnnxModel(component, env, session);
            } catch (OrtException | RuntimeException e) {
                session.close();
                throw e;
            }
        } catch (OrtException e) {
            throw new ModelContractException(component + ": ONNX Runtime cannot load " + file + ": " + e.getMessage(), e);
        }
    }

    private static Map<String, TensorInfo> tensorInfos(Map<String, NodeInfo> nodes) {
        Map<String, TensorInfo> out = new LinkedHashMap<>();
        nodes.forEach((name, node) -> {
            if (node.getInfo() instanceof TensorInfo ti) {
                out.put(name, ti);
            }
        });
        return out;
    }

    public String component() {
        return component;
    }

    public OrtEnvironment env() {
        return env;
    }

    /** The declared input, or a {@link ModelContractException} listing what the graph has. */
    public TensorInfo input(String name) {
        TensorInfo ti = inputs.get(name);
        if (ti == null) {
            throw new ModelContractException(component + ": the graph has no input \"" + name + "\"; it has "
                    + describe());
        }
        return ti;
    }

    public boolean hasInput(String name) {
        return inputs.containsKey(name);
    }

    public boolean hasOutput(String name) {
        return outputs.containsKey(name);
    }

    /** The declared output, or a {@link ModelContractException} listing what the graph has. */
    public TensorInfo output(String name) {
        TensorInfo ti = outputs.get(name);
        if (ti == null) {
            throw new ModelContractException(component + ": the graph has no output \"" + name + "\"; it has "
                    + describe());
        }
        return ti;
    }

    /** Checks an input's rank and that its element type is one of {@code types}. */
    public TensorInfo requireInput(String name, int rank, OnnxJavaType... types) {
        return require("input", name, input(name), rank, types);
    }

    public TensorInfo requireOutput(String name, int rank, OnnxJavaType... types) {
        return require("output", name, output(name), rank, types);
    }

    private TensorInfo require(String kind, String name, TensorInfo ti, int rank, OnnxJavaType... types) {
        if (ti.getShape().length != rank) {
            throw new ModelContractException(component + ": " + kind + " \"" + name + "\" must have rank " + rank
                    + ", the graph declares " + Arrays.toString(ti.getShape()) + "; graph: " + describe());
        }
        if (!Arrays.asList(types).contains(ti.type)) {
            throw new ModelContractException(component + ": " + kind + " \"" + name + "\" must be one of "
                    + Arrays.toString(types) + ", the graph declares " + ti.type + "; graph: " + describe());
        }
        return ti;
    }

    /** Static size of dimension {@code i} of an input or output, or -1 when symbolic. */
    public static long staticDim(TensorInfo ti, int i) {
        long d = ti.getShape()[i];
        return d > 0 ? d : -1;
    }

    /** "inputs: sample FLOAT[-1,4,-1,-1], ...; outputs: ..." for error messages and logs. */
    public String describe() {
        return "inputs: " + list(inputs) + "; outputs: " + list(outputs);
    }

    private static String list(Map<String, TensorInfo> m) {
        return m.entrySet().stream()
                .map(e -> e.getKey() + " " + e.getValue().type + Arrays.toString(e.getValue().getShape()))
                .collect(Collectors.joining(", "));
    }

    /**
     * A float input in the element type the graph declares (FLOAT, or FLOAT16 for fp16 exports).
     * The caller owns the returned tensor.
     */
    public OnnxTensor floatInput(String name, FloatTensor t) throws OrtException {
        TensorInfo ti = input(name);
        float[] d = t.data();
        if (ti.type == OnnxJavaType.FLOAT16) {
            ShortBuffer half = ByteBuffer.allocateDirect(d.length * 2).order(ByteOrder.nativeOrder()).asShortBuffer();
            for (float v : d) {
                half.put(Float16.fromFloat(v));
            }
            half.rewind();
            return OnnxTensor.createTensor(env, half, t.shape(), OnnxJavaType.FLOAT16);
        }
        FloatBuffer buf = ByteBuffer.allocateDirect(d.length * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
        buf.put(d).rewind();
        return OnnxTensor.createTensor(env, buf, t.shape());
    }

    /** Runs the graph; the returned Result owns all outputs and must be closed by the caller. */
    public OrtSession.Result run(Map<String, OnnxTensor> feeds) throws OrtException {
        return session.run(feeds);
    }

    private final java.util.concurrent.atomic.AtomicLong terminatedRuns = new java.util.concurrent.atomic.AtomicLong();

    /**
     * Runs given up by their {@link RunStop} since start-up (work whose caller had gone): ended early, or not begun
     * because it had fired already (a deadline that passed while the request was still being read).
     */
    public long terminatedRuns() {
        return terminatedRuns.get();
    }

    /**
     * Runs the graph under {@code stop}: fired during the run, ONNX Runtime ends it early and this throws
     * JobCancelledException (also when it had fired before).
     */
    public OrtSession.Result run(Map<String, OnnxTensor> feeds, RunStop stop) throws OrtException {
        if (stop == RunStop.NEVER) {
            return session.run(feeds);
        }
        if (stop.stopped()) {
            terminatedRuns.incrementAndGet();
        }
        stop.check(component);
        try (OrtSession.RunOptions options = new OrtSession.RunOptions()) {
            stop.started(options);
            try {
                return session.run(feeds, options);
            } catch (OrtException e) {
                if (stop.stopped()) {
                    terminatedRuns.incrementAndGet();
                }
                stop.check(component); // terminated: say so, not "ONNX Runtime failed"
                throw e;
            } finally {
                stop.ended(options);
            }
        }
    }

    /** Copies output {@code name} of {@code result} into a float32 tensor (FLOAT16 outputs are widened). */
    public FloatTensor floatOutput(OrtSession.Result result, String name) {
        OnnxValue v = result.get(name).orElseThrow(() -> new ModelContractException(component
                + ": the run produced no output \"" + name + "\"; graph: " + describe()));
        if (!(v instanceof OnnxTensor tensor)) {
            throw new ModelContractException(component + ": output \"" + name + "\" is not a tensor");
        }
        long[] shape = tensor.getInfo().getShape();
        float[] out = new float[Math.toIntExact(FloatTensor.elementCount(shape))];
        tensor.getFloatBuffer().get(out);
        return new FloatTensor(shape, out);
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException(component + ": closing the session failed", e);
        }
    }
}
