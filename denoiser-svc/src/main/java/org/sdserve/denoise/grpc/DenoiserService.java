package org.sdserve.denoise.grpc;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.List;
import org.sdserve.common.grpc.Calls;
import org.sdserve.common.grpc.GrpcErrors;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.denoise.core.DenoiseJob;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.denoise.core.ModelGeometry;
import org.sdserve.denoise.core.StepListener;
import org.sdserve.denoise.scheduler.Schedulers;
import org.sdserve.proto.v1.DenoiseEvent;
import org.sdserve.proto.v1.DenoiseRequest;
import org.sdserve.proto.v1.DenoiserGrpc;
import org.sdserve.proto.v1.DescribeRequest;
import org.sdserve.proto.v1.Latents;
import org.sdserve.proto.v1.ModelDescription;
import org.sdserve.proto.v1.StepProgress;

/** gRPC adapter of {@link Denoiser}: a progress event per step, the latents last; cancellation between steps. */
public final class DenoiserService extends DenoiserGrpc.DenoiserImplBase {
    private static final System.Logger LOG = System.getLogger(DenoiserService.class.getName());
    private final Denoiser denoiser;

    public DenoiserService(Denoiser denoiser) {
        this.denoiser = denoiser;
    }

    @Override
    public void denoise(DenoiseRequest request, StreamObserver<DenoiseEvent> out) {
        ServerCallStreamObserver<DenoiseEvent> call = (ServerCallStreamObserver<DenoiseEvent>) out;
        long t0 = System.nanoTime();
        int[] done = {0};
        try {
            DenoiseJob job = toJob(request);
            FloatTensor latents = denoiser.denoise(job, new StepListener() {
                @Override
                public void onStep(int step, int total, double timestep, List<byte[]> previews) {
                    StepProgress.Builder p = StepProgress.newBuilder().setStep(step).setTotalSteps(total)
                            .setTimestep((float) timestep).setElapsedMs((System.nanoTime() - t0) / 1_000_000);
                    previews.forEach(png -> p.addPreviewPng(ByteString.copyFrom(png)));
                    done[0] = step;
                    call.onNext(DenoiseEvent.newBuilder().setProgress(p).build());
                }

                @Override
                public boolean cancelled() {
                    return call.isCancelled() || Context.current().isCancelled();
                }
            });
            out.onNext(DenoiseEvent.newBuilder()
                    .setLatents(Latents.newBuilder().setLatents(TensorCodec.encode(latents))).build());
            out.onCompleted();
            LOG.log(System.Logger.Level.INFO, "denoised {0} image(s), {1} steps of {2}, in {3} ms",
                    job.seeds().length, done[0] - job.startStep(), job.scheduler(),
                    (System.nanoTime() - t0) / 1_000_000);
        } catch (Throwable t) {
            if (call.isCancelled() || Context.current().isCancelled()) {
                LOG.log(System.Logger.Level.INFO, "denoise cancelled by the caller after step {0}", done[0]);
            } else {
                out.onError(GrpcErrors.toException(t));
            }
        }
    }

    @Override
    public void describe(DescribeRequest request, StreamObserver<ModelDescription> out) {
        Calls.unary(out, () -> {
            ModelGeometry g = denoiser.geometry();
            return ModelDescription.newBuilder().setModel(denoiser.modelName())
                    .setDefaultWidth(g.defaultWidth()).setDefaultHeight(g.defaultHeight())
                    .setSizeMultiple(g.sizeMultiple()).setVaeFactor(g.vaeFactor())
                    .setLatentChannels(denoiser.unet().latentChannels())
                    .setContextWidth(Math.max(0, denoiser.unet().contextWidth()))
                    .addAllSchedulers(Schedulers.NAMES).setDefaultScheduler(Schedulers.DEFAULT).build();
        });
    }

    static DenoiseJob toJob(DenoiseRequest r) {
        FloatTensor prompt = r.hasPromptEmbeds() ? TensorCodec.decode(r.getPromptEmbeds(), "prompt_embeds") : null;
        FloatTensor negative = r.hasNegativeEmbeds()
                ? TensorCodec.decode(r.getNegativeEmbeds(), "negative_embeds") : null;
        FloatTensor init = r.hasInitLatents() ? TensorCodec.decode(r.getInitLatents(), "init_latents") : null;
        long[] seeds = r.getSeedsList().stream().mapToLong(Long::longValue).toArray();
        return new DenoiseJob(prompt, negative, r.getWidth(), r.getHeight(), r.getSteps(), r.getGuidanceScale(),
                r.getScheduler(), seeds, r.getPreviewInterval(), r.getEta(), init, r.getStartStep(), r.getEndStep());
    }
}
