package org.sdserve.denoise.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.sdserve.common.error.JobCancelledException;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.denoise.scheduler.Scheduler;

/**
 * One job's denoising state between UNet calls: its latents, scheduler, noise generators and step index. The
 * UNet call itself is made by whoever drives the run (alone, or merged with other runs' rows by the
 * batcher): {@link #modelInput()} gives this run's rows, {@link #advance} takes the UNet's output for them.
 * Guided runs contribute 2B rows [input x B, input x B] (uncond first, as diffusers), others B rows.
 */
public final class DenoiseRun {
    private final DenoiseJob job;
    private final StepListener listener;
    private final Scheduler scheduler;
    private final NoiseSource noise;
    private final FloatTensor context; // [rows, 77, W]: [uncond x B, text x B] with guidance, else [text x B]
    private final Optional<LatentPreview> preview;
    private final int end;
    private final CompletableFuture<FloatTensor> result = new CompletableFuture<>();
    private final Inpaint inpaint; // null unless inpainting
    private FloatTensor latents; // [B, C, h, w], UNet space
    private int step;

    /**
     * Inpainting with a standard UNet (diffusers' StableDiffusionInpaintPipeline, num_channels_unet == 4): after
     * each step, where the mask is 0 the latents become the image's, noised to the next step with the noise that
     * started the run (clean after the last step): latents = (1 - mask) x known + mask x latents.
     *
     * @param mask [1 or B, 1, h, w], 1 = repaint
     * @param image the init image's latents [B, C, h, w]
     * @param noise the noise tensor that noised them at the start [B, C, h, w]
     */
    record Inpaint(FloatTensor mask, FloatTensor image, FloatTensor noise) {
        FloatTensor blend(FloatTensor latents, FloatTensor known) {
            long[] s = latents.shape();
            int b = (int) s[0];
            int c = (int) s[1];
            int plane = (int) (s[2] * s[3]);
            float[] m = mask.data();
            float[] x = latents.data();
            float[] k = known.data();
            float[] out = new float[x.length];
            for (int i = 0; i < b; i++) {
                int mi = mask.dim(0) == 1 ? 0 : i * plane;
                for (int ch = 0; ch < c; ch++) {
                    int base = (i * c + ch) * plane;
                    for (int p = 0; p < plane; p++) {
                        float w = m[mi + p];
                        out[base + p] = (1f - w) * k[base + p] + w * x[base + p];
                    }
                }
            }
            return new FloatTensor(s, out);
        }
    }

    /**
     * An inpainting UNet's extra input channels (diffusers' inpaint pipeline, num_channels_unet == 9): the mask
     * [1 or B, 1, h, w] and the masked image's latents [B, C, h, w], after the scaled latents.
     */
    record InpaintingInput(FloatTensor mask, FloatTensor maskedImage) {
        /** [B, C, h, w] latents -> [B, 2C + 1, h, w]: latents, mask, masked-image latents per row. */
        FloatTensor concat(FloatTensor latents) {
            long[] s = latents.shape();
            int b = (int) s[0];
            int c = (int) s[1];
            int plane = (int) (s[2] * s[3]);
            float[] x = latents.data();
            float[] m = mask.data();
            float[] z = maskedImage.data();
            float[] out = new float[b * (2 * c + 1) * plane];
            for (int i = 0; i < b; i++) {
                int o = i * (2 * c + 1) * plane;
                System.arraycopy(x, i * c * plane, out, o, c * plane);
                System.arraycopy(m, mask.dim(0) == 1 ? 0 : i * plane, out, o + c * plane, plane);
                System.arraycopy(z, i * c * plane, out, o + (c + 1) * plane, c * plane);
            }
            return new FloatTensor(new long[] {b, 2L * c + 1, s[2], s[3]}, out);
        }
    }

    private final InpaintingInput inpaintingInput; // null unless the UNet inpaints

    DenoiseRun(DenoiseJob job, StepListener listener, Scheduler scheduler, NoiseSource noise, FloatTensor latents,
               FloatTensor context, Optional<LatentPreview> preview, int start, int end, Inpaint inpaint,
               InpaintingInput inpaintingInput) {
        this.inpaint = inpaint;
        this.inpaintingInput = inpaintingInput;
        this.job = job;
        this.listener = listener;
        this.scheduler = scheduler;
        this.noise = noise;
        this.latents = latents;
        this.context = context;
        this.preview = preview;
        this.step = start;
        this.end = end;
    }

    /** UNet rows this run adds to a call: 2B guided, B unguided. */
    public int rows() {
        return context.dim(0);
    }

    /** The latent shape [B, C, h, w]; runs merge only with runs of the same C, h, w. */
    public long[] latentShape() {
        return latents.shape();
    }

    public FloatTensor context() {
        return context;
    }

    /** The timestep of the next UNet call. */
    public double timestep() {
        return scheduler.timestep(step);
    }

    public boolean done() {
        return step >= end;
    }

    public boolean cancelled() {
        return listener.cancelled();
    }

    /**
     * The scaled latents of the next call (an inpainting UNet's: with the mask and the masked image's latents),
     * doubled under guidance: [rows, C, h, w].
     */
    public FloatTensor modelInput() {
        FloatTensor input = scheduler.scaleModelInput(latents, step);
        if (inpaintingInput != null) {
            input = inpaintingInput.concat(input);
        }
        return job.guided() ? FloatTensor.concat(input, input) : input;
    }

    /**
     * Guidance on this run's UNet output [rows, C, h, w] and one scheduler update; reports the step to the
     * listener.
     */
    public void advance(FloatTensor unetOut) {
        double t = scheduler.timestep(step);
        FloatTensor eps = job.guided() ? Guidance.apply(unetOut, job.guidanceScale()) : unetOut;
        Scheduler.StepResult r = scheduler.step(eps, step, latents, noise);
        latents = r.prevSample();
        step++;
        if (inpaint != null) {
            latents = inpaint.blend(latents, step < scheduler.steps()
                    ? scheduler.addNoise(inpaint.image(), inpaint.noise(), step) : inpaint.image());
        }
        FloatTensor x0 = r.predOriginal() != null ? r.predOriginal() : latents; // PNDM predicts no x0
        listener.onStep(step, scheduler.steps(), t, previews(x0));
        if (done()) {
            result.complete(latents);
        } else if (job.checkpointInterval() > 0 && step % job.checkpointInterval() == 0) {
            listener.onCheckpoint(new Checkpoint(step, new FloatTensor(latents.shape(), latents.data().clone()),
                    scheduler.history(), noise.draws()));
        }
    }

    /** Ends the run with an error (its UNet call failed, or it was cancelled). */
    public void fail(Throwable error) {
        result.completeExceptionally(error);
    }

    /** Ends a cancelled run with the step it stopped before. */
    public void cancel() {
        fail(new JobCancelledException("cancelled before step " + (step + 1) + " of " + scheduler.steps()));
    }

    /** The final latents [B, C, h, w] once the last step is done. */
    public CompletableFuture<FloatTensor> result() {
        return result;
    }

    private List<byte[]> previews(FloatTensor x0) {
        int every = job.previewInterval();
        int total = scheduler.steps();
        if (every <= 0 || preview.isEmpty() || (step % every != 0 && step != total)) {
            return List.of();
        }
        List<byte[]> out = new ArrayList<>();
        for (int i = 0; i < x0.dim(0); i++) {
            out.add(preview.get().render(x0, i).toPng());
        }
        return out;
    }
}
