package org.sdserve.vae.grpc;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.grpc.Calls;
import org.sdserve.common.grpc.GrpcErrors;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.eval.extract.FeatureExtractor;
import org.sdserve.proto.v1.DescribeExtractorRequest;
import org.sdserve.proto.v1.ExtractRequest;
import org.sdserve.proto.v1.ExtractResponse;
import org.sdserve.proto.v1.ExtractorDescription;
import org.sdserve.proto.v1.FeaturesGrpc;
import org.sdserve.proto.v1.ReferenceFeaturesChunk;
import org.sdserve.proto.v1.ReferenceFeaturesRequest;

/**
 * gRPC adapter of a {@link FeatureExtractor}: PNGs -> features [B, D] and logits [B, K], and the extractor's
 * reference features of real images (read once, when first asked for), streamed in chunks.
 */
public final class FeaturesService extends FeaturesGrpc.FeaturesImplBase {
    /** Most images per Extract call: a call's input tensor is then at most 64 x 3 x size x size floats. */
    public static final int MAX_IMAGES = 64;
    /** Largest side of an image to embed (the orchestrator's max-side default). */
    public static final int MAX_SIDE = 2048;
    /**
     * Most pixels per call, all images together (64 of 512 x 512): a call's decoded images take at most 48 MiB
     * (and one image more, the one found to exceed it).
     */
    public static final long MAX_PIXELS = 64L * 512 * 512;
    private final FeatureExtractor extractor;
    private final int chunkBytes;
    private volatile FloatTensor reference;
    private volatile boolean referenceRead;
    private volatile String referenceDigest = "";

    public FeaturesService(FeatureExtractor extractor) {
        this(extractor, CHUNK_BYTES);
    }

    /** With chunks of at most {@code chunkBytes} of features (tests: several chunks of a small set). */
    FeaturesService(FeatureExtractor extractor, int chunkBytes) {
        this.extractor = extractor;
        this.chunkBytes = chunkBytes;
    }

    @Override
    public void extract(ExtractRequest request, StreamObserver<ExtractResponse> out) {
        Calls.unary(out, () -> {
            int n = request.getPngCount();
            InvalidRequestException.require(n >= 1 && n <= MAX_IMAGES, "png must hold 1 to %d images, got %d",
                    MAX_IMAGES, n);
            List<RgbImage> images = new ArrayList<>(n);
            long pixels = 0;
            for (int i = 0; i < n; i++) {
                RgbImage img = RgbImage.fromPng(request.getPng(i).toByteArray(), "png[" + i + "]", MAX_SIDE);
                pixels += (long) img.width() * img.height();
                InvalidRequestException.require(pixels <= MAX_PIXELS, "png must hold at most %d pixels together, "
                        + "got %d by png[%d]", MAX_PIXELS, pixels, i);
                images.add(img);
            }
            Calls.stopWhenCancelled().check("feature extraction");
            FeatureExtractor.Extracted x = extractor.extract(images);
            ExtractResponse.Builder b = ExtractResponse.newBuilder()
                    .setFeatures(TensorCodec.encode(FloatTensor.ofRows(x.features())));
            if (x.logits() != null) {
                b.setLogits(TensorCodec.encode(FloatTensor.ofRows(x.logits())));
            }
            return b.build();
        });
    }

    @Override
    public void describeExtractor(DescribeExtractorRequest request, StreamObserver<ExtractorDescription> out) {
        Calls.unary(out, () -> {
            FloatTensor reference = reference();
            return ExtractorDescription.newBuilder().setName(extractor.name()).setSize(extractor.size())
                    .setHasLogits(extractor.hasLogits()).setReferenceCount(reference == null ? 0 : reference.dim(0))
                    .setDimension(reference == null ? 0 : reference.dim(1)).setReferenceDigest(referenceDigest)
                    .build();
        });
    }

    /** Most bytes of features per ReferenceFeatures message. */
    static final int CHUNK_BYTES = 4 << 20;

    /**
     * The reference rows in chunks, written as the call can take them (gRPC flow control: a slow reader holds at
     * most one chunk here, not the set).
     */
    @Override
    public void referenceFeatures(ReferenceFeaturesRequest request,
                                  StreamObserver<ReferenceFeaturesChunk> observer) {
        var out = (ServerCallStreamObserver<ReferenceFeaturesChunk>) observer;
        FloatTensor reference;
        try {
            reference = reference();
        } catch (RuntimeException e) {
            out.onError(GrpcErrors.toException(e));
            return;
        }
        if (reference == null) {
            out.onError(Status.FAILED_PRECONDITION.withDescription("the feature extractor " + extractor.name()
                    + " ships no reference features (its config.json's reference_features)").asRuntimeException());
            return;
        }
        int rows = reference.dim(0);
        int perChunk = Math.max(1, chunkBytes / (4 * reference.dim(1)));
        int[] next = {0};
        Runnable drain = () -> {
            synchronized (next) {
                while (next[0] < rows && out.isReady() && !out.isCancelled()) {
                    int to = Math.min(rows, next[0] + perChunk);
                    out.onNext(ReferenceFeaturesChunk.newBuilder()
                            .setFeatures(TensorCodec.encode(reference.slice(next[0], to))).build());
                    next[0] = to;
                }
                if (next[0] == rows && !out.isCancelled()) {
                    next[0] = rows + 1; // completed once
                    out.onCompleted();
                }
            }
        };
        out.setOnReadyHandler(drain);
        drain.run();
    }

    /** The reference set, read once (float32, as the file holds it), or null when the extractor ships none. */
    private FloatTensor reference() {
        FloatTensor r = reference;
        if (r == null && !referenceRead) {
            synchronized (this) {
                if (!referenceRead) {
                    reference = extractor.referenceTensor();
                    referenceDigest = reference == null ? "" : digest(reference);
                    referenceRead = true;
                }
                r = reference;
            }
        }
        return r;
    }

    /** SHA-256 of the features' float32 little-endian bytes, in hex. */
    private static String digest(FloatTensor t) {
        try {
            java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * 4096).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (float v : t.data()) {
                if (!b.hasRemaining()) {
                    sha.update(b.array(), 0, b.position());
                    b.clear();
                }
                b.putFloat(v);
            }
            sha.update(b.array(), 0, b.position());
            return java.util.HexFormat.of().formatHex(sha.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
