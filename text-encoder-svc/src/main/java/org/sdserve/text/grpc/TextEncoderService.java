package org.sdserve.text.grpc;

import io.grpc.stub.StreamObserver;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.grpc.Calls;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.proto.v1.EncodeRequest;
import org.sdserve.proto.v1.EncodeResponse;
import org.sdserve.proto.v1.TextEncoderGrpc;
import org.sdserve.text.core.TextEncoder;

/** gRPC adapter of {@link TextEncoder}: proto <-> core, errors -> status. */
public final class TextEncoderService extends TextEncoderGrpc.TextEncoderImplBase {
    /** Texts per call: a job sends its prompt and negative prompt; more is a client bug or abuse. */
    public static final int MAX_TEXTS = 64;
    private final TextEncoder encoder;

    public TextEncoderService(TextEncoder encoder) {
        this.encoder = encoder;
    }

    @Override
    public void encode(EncodeRequest request, StreamObserver<EncodeResponse> out) {
        Calls.unary(out, () -> {
            int n = request.getTextsCount();
            InvalidRequestException.require(n >= 1 && n <= MAX_TEXTS, "texts: between 1 and %d texts, got %d",
                    MAX_TEXTS, n);
            TextEncoder.Encoding e = encoder.encode(request.getTextsList(), request.getRejectTruncation(),
                    Calls.stopWhenCancelled());
            EncodeResponse.Builder b = EncodeResponse.newBuilder()
                    .setLastHiddenState(TensorCodec.encode(e.lastHiddenState()));
            if (e.pooled() != null) {
                b.setPoolerOutput(TensorCodec.encode(e.pooled()));
            }
            for (int c : e.tokenCounts()) {
                b.addTokenCounts(c);
            }
            return b.build();
        });
    }
}
