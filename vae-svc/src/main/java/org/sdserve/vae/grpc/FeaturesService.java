package org.sdserve.vae.grpc;

import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.grpc.Calls;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.eval.extract.FeatureExtractor;
import org.sdserve.eval.metrics.Features;
import org.sdserve.proto.v1.DescribeExtractorRequest;
import org.sdserve.proto.v1.ExtractRequest;
import org.sdserve.proto.v1.ExtractResponse;
import org.sdserve.proto.v1.ExtractorDescription;
import org.sdserve.proto.v1.FeaturesGrpc;

/**
 * gRPC adapter of a {@link FeatureExtractor}: PNGs -> features [B, D] and logits [B, K], and the extractor's
 * reference features of real images (read once, on the first DescribeExtractor).
 */
public final class FeaturesService extends FeaturesGrpc.FeaturesImplBase {
    /** Most images per Extract call: a call's input tensor is then at most 64 x 3 x size x size floats. */
    public static final int MAX_IMAGES = 64;
    private final FeatureExtractor extractor;
    private volatile ExtractorDescription description;

    public FeaturesService(FeatureExtractor extractor) {
        this.extractor = extractor;
    }

    @Override
    public void extract(ExtractRequest request, StreamObserver<ExtractResponse> out) {
        Calls.unary(out, () -> {
            int n = request.getPngCount();
            InvalidRequestException.require(n >= 1 && n <= MAX_IMAGES, "png must hold 1 to %d images, got %d",
                    MAX_IMAGES, n);
            List<RgbImage> images = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                images.add(RgbImage.fromPng(request.getPng(i).toByteArray(), "png[" + i + "]"));
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
            ExtractorDescription d = description;
            if (d == null) {
                ExtractorDescription.Builder b = ExtractorDescription.newBuilder().setName(extractor.name())
                        .setSize(extractor.size()).setHasLogits(extractor.hasLogits());
                Features reference = extractor.reference();
                if (reference != null) {
                    float[] data = new float[reference.count() * reference.dimension()];
                    for (int i = 0; i < data.length; i++) {
                        data[i] = (float) reference.rows().data[i]; // read from float32 .npy: exact
                    }
                    b.setReferenceFeatures(TensorCodec.encode(new FloatTensor(
                            new long[] {reference.count(), reference.dimension()}, data)));
                }
                d = b.build();
                description = d;
            }
            return d;
        });
    }
}
