package org.sdserve.vae.grpc;

import com.google.protobuf.ByteString;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import org.sdserve.common.grpc.Calls;
import org.sdserve.common.onnx.RunStop;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.proto.v1.DecodeRequest;
import org.sdserve.proto.v1.DecodeResponse;
import org.sdserve.proto.v1.VaeEncodeRequest;
import org.sdserve.proto.v1.VaeEncodeResponse;
import org.sdserve.proto.v1.VaeGrpc;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.vae.core.Vae;

/** gRPC adapter of {@link Vae}: latents -> PNGs and PNGs -> latents. */
public final class VaeService extends VaeGrpc.VaeImplBase {
    private final Vae vae;
    private final TorchGenerator.Kernel noiseKernel;

    public VaeService(Vae vae, TorchGenerator.Kernel noiseKernel) {
        this.vae = vae;
        this.noiseKernel = noiseKernel;
    }

    @Override
    public void decode(DecodeRequest request, StreamObserver<DecodeResponse> out) {
        Calls.unary(out, () -> {
            InvalidRequestException.require(request.hasLatents(), "latents are required");
            RunStop stop = Calls.stopWhenCancelled();
            List<RgbImage> images = vae.decode(TensorCodec.decode(request.getLatents(), "latents"), stop);
            DecodeResponse.Builder b = DecodeResponse.newBuilder()
                    .setWidth(images.get(0).width()).setHeight(images.get(0).height());
            for (RgbImage img : images) {
                stop.check("vae decode");
                b.addPng(ByteString.copyFrom(img.toPng()));
            }
            return b.build();
        });
    }

    @Override
    public void encode(VaeEncodeRequest request, StreamObserver<VaeEncodeResponse> out) {
        Calls.unary(out, () -> {
            List<RgbImage> images = new ArrayList<>();
            for (int i = 0; i < request.getPngCount(); i++) {
                images.add(RgbImage.fromPng(request.getPng(i).toByteArray(), "png[" + i + "]"));
            }
            FloatTensor noise = null;
            if (request.hasSeed() && !images.isEmpty()) {
                long[] seeds = new long[images.size()];
                for (int i = 0; i < seeds.length; i++) {
                    seeds[i] = request.getSeed() + i;
                }
                RgbImage first = images.get(0);
                long[] shape = {seeds.length, vae.latentChannels(), first.height() / vae.factor(),
                    first.width() / vae.factor()};
                InvalidRequestException.require(request.getSkipDraws() >= 0 && request.getSkipDraws() <= 16,
                        "skip_draws must be in [0, 16], got %s", Integer.toUnsignedString(request.getSkipDraws()));
                NoiseSource source = new NoiseSource(seeds, noiseKernel);
                for (int i = 0; i < request.getSkipDraws(); i++) {
                    source.randn(shape); // the draws the denoiser makes before this sample
                }
                noise = source.randn(shape);
            } else {
                InvalidRequestException.require(request.getSkipDraws() == 0, "skip_draws goes with seed, which is unset");
            }
            RgbImage mask = request.getMaskPng().isEmpty() ? null
                    : RgbImage.fromPng(request.getMaskPng().toByteArray(), "mask_png");
            return VaeEncodeResponse.newBuilder().setLatents(TensorCodec.encode(vae.encode(images, mask, noise,
                    Calls.stopWhenCancelled()))).build();
        });
    }
}
