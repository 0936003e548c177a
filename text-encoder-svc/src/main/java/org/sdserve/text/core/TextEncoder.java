package org.sdserve.text.core;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.onnx.OnnxModel;
import org.sdserve.common.onnx.RunStop;
import org.sdserve.common.tensor.FloatTensor;

/**
 * Prompt -> CLIP text embeddings. Graph contract ({@code text_encoder/model.onnx}): input {@code input_ids}
 * int64 (optimum) or int32 (old diffusers script) [B,77]; outputs {@code last_hidden_state} float [B,77,W]
 * and, optionally, {@code pooler_output} float [B,W].
 */
public final class TextEncoder implements AutoCloseable {
    public static final String INPUT_IDS = "input_ids";
    public static final String HIDDEN = "last_hidden_state";
    public static final String POOLED = "pooler_output";

    private final ClipTokenizer tokenizer;
    private final OnnxModel model;
    private final OnnxJavaType idType;
    private final int width;

    /** The embeddings of a batch of texts, in request order. */
    public record Encoding(FloatTensor lastHiddenState, FloatTensor pooled, int[] tokenCounts) {
    }

    private TextEncoder(ClipTokenizer tokenizer, OnnxModel model) {
        this.tokenizer = tokenizer;
        this.model = model;
        TensorInfo ids = model.requireInput(INPUT_IDS, 2, OnnxJavaType.INT64, OnnxJavaType.INT32);
        this.idType = ids.type;
        long length = OnnxModel.staticDim(ids, 1);
        if (length > 0 && length != tokenizer.maxLength()) {
            throw new ModelContractException("text_encoder: input_ids has length " + length
                    + " but the tokenizer's model_max_length is " + tokenizer.maxLength());
        }
        model.requireOutput(HIDDEN, 3, OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16);
        // One real run at start-up: proves the graph executes (e.g. no missing kernel) and gives the width.
        this.width = encode(List.of(""), false).lastHiddenState().dim(2);
    }

    public static TextEncoder load(ModelDirectory dir, ExecutionOptions opts) {
        ClipTokenizer tokenizer = ClipTokenizer.load(dir);
        OnnxModel model = OnnxModel.open(dir.component("text_encoder"), "text_encoder", opts);
        try {
            return new TextEncoder(tokenizer, model);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    public ClipTokenizer tokenizer() {
        return tokenizer;
    }

    /** Hidden width W of the embeddings (768 for SD 1.x, 1024 for SD 2.x). */
    public int width() {
        return width;
    }

    /** Longest text accepted: the orchestrator's prompt limit; 77 CLIP tokens are rarely more than 400 characters. */
    public static final int MAX_TEXT_CHARS = 10_000;

    /**
     * Encodes texts in one batch. With {@code rejectTruncation}, a text over the tokenizer's length is an
     * {@link InvalidRequestException}; otherwise it is truncated as transformers does.
     */
    public Encoding encode(List<String> texts, boolean rejectTruncation) {
        return encode(texts, rejectTruncation, RunStop.NEVER);
    }

    /** The same, given up (JobCancelledException) as soon as {@code stop} fires. */
    public Encoding encode(List<String> texts, boolean rejectTruncation, RunStop stop) {
        int n = texts.size();
        for (int i = 0; i < n; i++) { // tokenizing is linear in the text (BPE quadratic in a word): bound it first
            InvalidRequestException.require(texts.get(i).length() <= MAX_TEXT_CHARS,
                    "text %d must be at most %d characters, got %d", i, MAX_TEXT_CHARS, texts.get(i).length());
        }
        int len = tokenizer.maxLength();
        int[] counts = new int[n];
        ByteBuffer buf = ByteBuffer.allocateDirect(n * len * (idType == OnnxJavaType.INT64 ? 8 : 4))
                .order(ByteOrder.nativeOrder());
        for (int i = 0; i < n; i++) {
            ClipTokenizer.Tokens t = tokenizer.encode(texts.get(i));
            counts[i] = t.count();
            if (rejectTruncation && t.truncated()) {
                throw new InvalidRequestException(String.format("text %d is %d tokens long; at most %d fit "
                        + "(%d with the start and end tokens): shorten it", i, t.count() - 2, len - 2, len));
            }
            for (long id : t.ids()) {
                if (idType == OnnxJavaType.INT64) {
                    buf.putLong(id);
                } else {
                    buf.putInt((int) id);
                }
            }
        }
        buf.rewind();
        long[] shape = {n, len};
        try (OnnxTensor ids = idType == OnnxJavaType.INT64
                ? OnnxTensor.createTensor(model.env(), buf.asLongBuffer(), shape)
                : OnnxTensor.createTensor(model.env(), buf.asIntBuffer(), shape);
             OrtSession.Result r = model.run(Map.of(INPUT_IDS, ids), stop)) {
            FloatTensor hidden = model.floatOutput(r, HIDDEN);
            FloatTensor pooled = model.hasOutput(POOLED) ? model.floatOutput(r, POOLED) : null;
            return new Encoding(hidden, pooled, counts);
        } catch (OrtException e) {
            throw new IllegalStateException("text_encoder: ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        model.close();
    }
}
