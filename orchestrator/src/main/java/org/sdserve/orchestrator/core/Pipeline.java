package org.sdserve.orchestrator.core;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.grpc.JobIds;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.tensor.TensorCodec;
import org.sdserve.orchestrator.core.JobEvent.Stage;
import org.sdserve.proto.v1.Checkpoint;
import org.sdserve.proto.v1.DecodeRequest;
import org.sdserve.proto.v1.DecodeResponse;
import org.sdserve.proto.v1.DenoiseEvent;
import org.sdserve.proto.v1.DenoiseRequest;
import org.sdserve.proto.v1.EncodeRequest;
import org.sdserve.proto.v1.EncodeResponse;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.StepProgress;
import org.sdserve.proto.v1.Tensor;
import org.sdserve.proto.v1.VaeEncodeRequest;

/**
 * One job's generation, in the order of diffusers' StableDiffusionPipeline.__call__: encode the prompt and the
 * negative prompt in one batch, denoise (in the denoiser: latents, scheduler, guidance), decode; each stage's
 * progress and the results go to the job's log as {@link JobEvent}s.
 */
final class Pipeline {
    private static final System.Logger LOG = System.getLogger(Pipeline.class.getName());
    private static final AttributeKey<Long> AFTER_STEP = AttributeKey.longKey("sd.after_step");
    private static final AttributeKey<Long> FROM_STEP = AttributeKey.longKey("sd.from_step");
    private static final AttributeKey<Long> CALL = AttributeKey.longKey("sd.call");
    private final Stages stages;
    private final int checkpointInterval;
    private final int denoiseAttempts;

    /**
     * @param checkpointInterval the denoiser checkpoints a job every this many UNet calls (0 = never)
     * @param denoiseAttempts most Denoise calls per job: the first, then one per broken stream
     */
    Pipeline(Stages stages, int checkpointInterval, int denoiseAttempts) {
        this.stages = stages;
        this.checkpointInterval = checkpointInterval;
        this.denoiseAttempts = denoiseAttempts;
    }

    /** Runs in the job's Context, on a worker thread. */
    void run(Job job) {
        GenerateRequest r = job.resolved();
        Map<String, Long> stageMs = new LinkedHashMap<>();

        // 2. encode: [negative, prompt] when guided (the unconditional row first, as diffusers concatenates)
        long t = System.nanoTime();
        boolean guided = r.getGuidanceScale() > 1f;
        progress(job, Stage.TEXT_ENCODING, 0, 1, 0, 0);
        EncodeRequest.Builder texts = EncodeRequest.newBuilder();
        if (guided) {
            texts.addTexts(r.getNegativePrompt());
        }
        EncodeResponse enc = job.trace.stage("encode", () -> stages.encode(texts.addTexts(r.getPrompt()).build()));
        checkTokenCounts(enc, guided);
        FloatTensor hidden = TensorCodec.decode(enc.getLastHiddenState(), "last_hidden_state"); // [1|2, 77, width]
        progress(job, Stage.TEXT_ENCODING, 1, 1, 0, 0);
        stageMs.put("text_encoding", ms(t));

        // 2b. image-to-image: the init image's latents, a seeded posterior sample per image (seed + i, as the noise)
        Tensor imageLatents = null;
        if (!r.getInitImage().isEmpty()) {
            t = System.nanoTime();
            progress(job, Stage.IMAGE_ENCODING, 0, 1, 0, 0);
            VaeEncodeRequest.Builder images = VaeEncodeRequest.newBuilder().setSeed(r.getSeed());
            for (int i = 0; i < job.seeds().size(); i++) {
                images.addPng(r.getInitImage());
            }
            imageLatents = job.trace.stage("encode_image", () -> stages.encodeImage(images.build())).getLatents();
            progress(job, Stage.IMAGE_ENCODING, 1, 1, 0, 0);
            stageMs.put("image_encoding", ms(t));
        }

        // 3-4. prepare latents and denoise, relaying each step
        t = System.nanoTime();
        DenoiseRequest.Builder dr = DenoiseRequest.newBuilder()
                .setPromptEmbeds(TensorCodec.encode(hidden.slice(guided ? 1 : 0, guided ? 2 : 1)))
                .setWidth(r.getWidth()).setHeight(r.getHeight()).setSteps(r.getSteps())
                .setGuidanceScale(r.getGuidanceScale()).setScheduler(r.getScheduler())
                .setPreviewInterval(r.getPreviewInterval()).setEta(r.getEta()).addAllSeeds(job.seeds())
                .setCheckpointInterval(checkpointEvery(r.getLatentsInterval()));
        if (guided) {
            dr.setNegativeEmbeds(TensorCodec.encode(hidden.slice(0, 1)));
        }
        if (imageLatents != null) {
            dr.setImageLatents(imageLatents).setStrength(r.getStrength());
            if (!r.getMaskImage().isEmpty()) {
                dr.setMask(TensorCodec.encode(latentMask(RgbImage.fromPng(r.getMaskImage().toByteArray(),
                        "mask_image"), stages.description().getVaeFactor())));
            }
            if (stages.description().getInpainting()) {
                dr.setMaskedImageLatents(maskedImageLatents(job, r));
            }
        }
        long denoiseStart = t;
        Tensor latents = job.trace.stage("denoise", () -> denoise(job, dr.build(), denoiseStart));
        stageMs.put("denoising", ms(t));

        // 5. decode to PNGs
        t = System.nanoTime();
        progress(job, Stage.DECODING, 0, 1, 0, 0);
        DecodeResponse images = job.trace.stage("decode",
                () -> stages.decode(DecodeRequest.newBuilder().setLatents(latents).build()));
        progress(job, Stage.DECODING, 1, 1, 0, 0);
        stageMs.put("decoding", ms(t));
        for (int i = 0; i < images.getPngCount(); i++) {
            job.emit(new JobEvent.Image(i, job.seeds().get(i), images.getWidth(), images.getHeight(),
                    images.getPng(i)));
        }
        job.emit(new JobEvent.Completed(Map.copyOf(stageMs), ms(job.acceptedAt())));
    }

    /**
     * An inpainting UNet's masked image (diffusers' init_image * (mask < 0.5)) encoded with each image's generator
     * after the run's noise: at strength 1 diffusers encodes no init image, so the sample is the second draw,
     * else the third (after the init image's sample and the noise).
     */
    private Tensor maskedImageLatents(Job job, GenerateRequest r) {
        VaeEncodeRequest.Builder masked = VaeEncodeRequest.newBuilder().setSeed(r.getSeed())
                .setMaskPng(r.getMaskImage()).setSkipDraws(r.getStrength() == 1f ? 1 : 2);
        for (int i = 0; i < job.seeds().size(); i++) {
            masked.addPng(r.getInitImage());
        }
        return job.trace.stage("encode_masked_image", () -> stages.encodeImage(masked.build())).getLatents();
    }

    /**
     * The inpainting mask at latent resolution [1, 1, h/f, w/f], 1 = repaint: as diffusers' mask processor, luma
     * (PIL's "L": (19595 R + 38470 G + 7471 B + 2^15) >> 16) over 255, binarized at 0.5, then torch's nearest
     * interpolation to the latent size (the pixel at (f y, f x)).
     */
    static FloatTensor latentMask(RgbImage mask, int factor) {
        int h = mask.height() / factor;
        int w = mask.width() / factor;
        float[] out = new float[h * w];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                out[y * w + x] = mask.masked(x * factor, y * factor) ? 1f : 0f;
            }
        }
        return new FloatTensor(new long[] {1, 1, h, w}, out);
    }

    /**
     * Checkpoints serve both resume and the job's latent snapshots: the call checkpoints at every multiple of the
     * greatest common divisor of the two intervals (0 = that one is off).
     */
    private int checkpointEvery(int latentsInterval) {
        if (latentsInterval == 0 || checkpointInterval == 0) {
            return Math.max(latentsInterval, checkpointInterval);
        }
        return java.math.BigInteger.valueOf(checkpointInterval).gcd(java.math.BigInteger.valueOf(latentsInterval))
                .intValue();
    }

    /**
     * The Denoise call, relaying its steps; when the stream breaks (UNAVAILABLE: the replica died, or drained past
     * its grace) the job continues on another replica from its last checkpoint, or from the start when it has
     * none, up to {@link #denoiseAttempts} calls. Seeded noise and exact checkpoints make the result the same;
     * steps already reported are not reported again.
     */
    private Tensor denoise(Job job, DenoiseRequest request, long start) {
        int latentsInterval = job.resolved().getLatentsInterval();
        Checkpoint last = null;
        int reported = 0; // the last step relayed to the job's log
        int skipped = -1; // steps before the first reported one (image-to-image starts into the schedule)
        int snapshot = 0; // the step of the last latent snapshot relayed
        for (int attempt = 1; ; attempt++) {
            DenoiseRequest call = last == null ? request : request.toBuilder().setResume(last).build();
            try {
                Iterator<DenoiseEvent> events = stages.denoise(call);
                while (events.hasNext()) {
                    DenoiseEvent e = events.next();
                    switch (e.getEventCase()) {
                        case LATENTS -> {
                            if (latentsInterval > 0) {
                                job.emit(new JobEvent.Latents(reported, true, e.getLatents().getLatents()));
                            }
                            return e.getLatents().getLatents();
                        }
                        case CHECKPOINT -> {
                            last = e.getCheckpoint();
                            if (latentsInterval > 0 && last.getStep() % latentsInterval == 0
                                    && last.getStep() > snapshot) { // (a resumed call repeats none)
                                snapshot = last.getStep();
                                job.emit(new JobEvent.Latents(snapshot, false, last.getLatents()));
                            }
                        }
                        case PROGRESS -> {
                            if (e.getProgress().getStep() > reported) {
                                reported = e.getProgress().getStep();
                                skipped = skipped < 0 ? reported - 1 : skipped; // (the first step is always sent)
                                relay(job, e.getProgress(), start, skipped);
                            }
                        }
                        default -> { } // an event kind newer than this orchestrator
                    }
                }
                throw new StatusRuntimeException(Status.INTERNAL.withDescription(
                        "the denoiser ended its stream without latents"));
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() != Status.Code.UNAVAILABLE || Context.current().isCancelled()
                        || attempt >= denoiseAttempts) {
                    throw e;
                }
                JobTrace.event("resumed", Attributes.of(AFTER_STEP, (long) reported, FROM_STEP,
                        last == null ? 0L : last.getStep(), CALL, attempt + 1L));
                LOG.log(System.Logger.Level.WARNING, "{0}denoising broke after step {1} ({2}); continuing on "
                        + "another replica from {3} (call {4} of at most {5})", JobIds.logPrefix(job.id(),
                        job.trace.traceId()), reported,
                        e.getStatus().getDescription(), last == null ? "the start" : "step " + last.getStep(),
                        attempt + 1, denoiseAttempts);
                backoff(attempt);
            }
        }
    }

    /** 100 ms, doubling per broken call, at most 1 s: time for the health checks and the balancer to catch up. */
    private static void backoff(int attempt) {
        try {
            Thread.sleep(Math.min(1000, 100L << Math.min(attempt - 1, 4)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw Status.CANCELLED.withDescription("the orchestrator is stopping").asRuntimeException();
        }
    }

    private static void relay(Job job, StepProgress p, long start, int skipped) {
        long perStep = ms(start) / Math.max(1, p.getStep() - skipped);
        progress(job, Stage.DENOISING, p.getStep(), p.getTotalSteps(), p.getTimestep(),
                perStep * (p.getTotalSteps() - p.getStep()));
        List<ByteString> previews = p.getPreviewPngList();
        for (int i = 0; i < previews.size(); i++) {
            job.emit(new JobEvent.Preview(p.getStep(), i, previews.get(i)));
        }
    }

    private static void checkTokenCounts(EncodeResponse enc, boolean guided) {
        int limit = (int) enc.getLastHiddenState().getShape(1);
        String[] fields = guided ? new String[] {"negative_prompt", "prompt"} : new String[] {"prompt"};
        for (int i = 0; i < fields.length; i++) {
            int count = enc.getTokenCounts(i);
            InvalidRequestException.require(count <= limit, "%s is %d tokens long; at most %d fit (%d with "
                    + "the start and end tokens): shorten it", fields[i], count - 2, limit - 2, limit);
        }
    }

    private static void progress(Job job, Stage stage, int step, int total, float timestep, long remainingMs) {
        job.emit(new JobEvent.Progress(stage, step, total, timestep, ms(job.acceptedAt()), remainingMs));
    }

    private static long ms(long since) {
        return (System.nanoTime() - since) / 1_000_000;
    }
}
