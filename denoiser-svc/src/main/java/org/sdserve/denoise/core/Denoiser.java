package org.sdserve.denoise.core;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.tensor.FloatTensor;
import org.sdserve.common.noise.NoiseSource;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.denoise.batch.StepBatcher;
import org.sdserve.denoise.scheduler.Scheduler;
import org.sdserve.denoise.scheduler.SchedulerConfig;
import org.sdserve.denoise.scheduler.Schedulers;

/**
 * The denoising stage: seeded noise, then for each step the UNet on the (guidance-doubled) batch and one
 * scheduler update, as in diffusers' StableDiffusionPipeline.__call__ steps 5-7.
 */
public final class Denoiser implements AutoCloseable {
    public static final int MAX_STEPS = 1000;
    public static final int MAX_IMAGES = 64;

    private final String modelName;
    private final UNet unet;
    private final SchedulerConfig schedulerConfig;
    private final ModelGeometry geometry;
    private final Optional<LatentPreview> preview;
    private final TorchGenerator.Kernel noiseKernel;
    private final java.util.concurrent.atomic.AtomicLong stepsRun = new java.util.concurrent.atomic.AtomicLong();

    private final BatchSettings batchSettings;
    private final StepBatcher batcher; // null when batching is off
    private volatile MemoryBudget memory = MemoryBudget.OFF;

    public Denoiser(String modelName, UNet unet, SchedulerConfig schedulerConfig, ModelGeometry geometry,
                    Optional<LatentPreview> preview, TorchGenerator.Kernel noiseKernel, BatchSettings batching) {
        this.noiseKernel = noiseKernel;
        this.batchSettings = batching;
        this.batcher = batching.enabled() ? new StepBatcher(unet, batching) : null;
        this.modelName = modelName;
        this.unet = unet;
        this.schedulerConfig = schedulerConfig;
        this.geometry = geometry;
        this.preview = preview;
    }

    public static Denoiser load(ModelDirectory dir, ExecutionOptions opts) {
        return load(dir, opts, TorchGenerator.Kernel.AVX2, BatchSettings.DEFAULT);
    }

    /**
     * @param noiseKernel which torch CPU kernel the seeded noise reproduces
     * @param batching whether and how the UNet calls of concurrent jobs are merged
     */
    public static Denoiser load(ModelDirectory dir, ExecutionOptions opts, TorchGenerator.Kernel noiseKernel,
                                BatchSettings batching) {
        SchedulerConfig config = SchedulerConfig.parse(dir.json("scheduler/scheduler_config.json"));
        ModelGeometry geometry = ModelGeometry.read(dir);
        UNet unet = UNet.load(dir, opts);
        try {
            return new Denoiser(dir.name(), unet, config, geometry,
                    LatentPreview.forModel(dir, unet.latentChannels()), noiseKernel, batching);
        } catch (RuntimeException e) {
            unet.close();
            throw e;
        }
    }

    /**
     * Admits jobs against a budget of activation memory from now on: {@code setting} is "auto" (80% of the
     * cgroup's or the machine's memory, less what this process holds), "0" (off), or a size ("6G"). The cost
     * model is measured on this process's UNet first (two calls, at the model's default latent side, at least
     * 64, and half of it); where it cannot be (not Linux; a GPU, whose memory is not this process's), admission
     * stays off. Returns the budget in force.
     */
    public MemoryBudget budgetMemory(String setting, boolean gpu) {
        java.util.OptionalLong explicit = MemoryBudget.parse(setting);
        if (explicit.isPresent() && explicit.getAsLong() == 0 || gpu) {
            return memory;
        }
        int side = Math.max(64, geometry.defaultHeight() / geometry.vaeFactor());
        Optional<MemoryBudget.CostModel> cost = MemoryBudget.calibrate(unet, side);
        if (cost.isEmpty()) {
            return memory;
        }
        long budget = explicit.isPresent() ? explicit.getAsLong() : MemoryBudget.autoBudget().orElse(0);
        memory = new MemoryBudget(budget, cost.get());
        return memory;
    }

    public MemoryBudget memory() {
        return memory;
    }

    public String modelName() {
        return modelName;
    }

    public ModelGeometry geometry() {
        return geometry;
    }

    public UNet unet() {
        return unet;
    }

    public SchedulerConfig schedulerConfig() {
        return schedulerConfig;
    }

    /** UNet steps run since start-up, over all jobs (a counter for monitoring and tests). */
    public long stepsRun() {
        return stepsRun.get();
    }

    /**
     * Runs the job to the end on this thread and returns the final latents [B, C, h, w] (UNet space); with a
     * batcher, the steps run on the batcher's thread, merged with other jobs', and this thread waits.
     */
    public FloatTensor denoise(DenoiseJob job, StepListener listener) {
        CompletableFuture<FloatTensor> result = submit(job, listener);
        try {
            return result.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw e;
        }
    }

    /**
     * Checks the job (InvalidRequestException here, on the caller's thread) and starts it: with batching on,
     * the batcher runs its steps and completes the future; with it off, this thread runs every step before
     * returning a completed future. The listener hears each step on the thread that ran it.
     */
    public CompletableFuture<FloatTensor> submit(DenoiseJob job, StepListener listener) {
        DenoiseRun run = prepare(job, listener);
        MemoryBudget budget = memory;
        long[] shape = run.latentShape();
        long bytes = budget.bytes(run.rows(), shape[2] * shape[3]);
        budget.acquire(bytes, String.format("%dx%d with %d image(s)%s", job.width(), job.height(),
                job.seeds().length, job.guided() ? ", guided" : ""), listener::cancelled);
        run.result().whenComplete((r, e) -> budget.release(bytes));
        if (batcher != null) {
            batcher.submit(run);
            return run.result();
        }
        try {
            while (!run.done()) {
                if (run.cancelled()) {
                    run.cancel();
                    break;
                }
                double t = run.timestep();
                run.advance(unet.predict(run.modelInput(), t, run.context()));
            }
        } catch (RuntimeException | Error e) {
            run.fail(e);
        }
        return run.result();
    }

    /** The batcher when batching is on (its counters), else empty. */
    public Optional<StepBatcher> batcher() {
        return Optional.ofNullable(batcher);
    }

    public BatchSettings batchSettings() {
        return batchSettings;
    }

    /** Steps 1-3 of the loop: check, seeded initial latents, the text conditioning of the UNet rows. */
    private DenoiseRun prepare(DenoiseJob job, StepListener listener) {
        // 1. check the job against the model
        validate(job);
        int batch = job.seeds().length;
        int f = geometry.vaeFactor();
        long[] shape = {batch, unet.latentChannels(), job.height() / f, job.width() / f};
        Scheduler scheduler = Schedulers.create(job.scheduler(), schedulerConfig, job.steps(), job.eta());
        // start/end count UNet calls, which some schedulers make more of than inference steps (PNDM, Heun)
        int end = job.endStep() == 0 ? scheduler.steps() : job.endStep();
        InvalidRequestException.require(job.startStep() < scheduler.steps() && end > job.startStep()
                        && end <= scheduler.steps(),
                "start_step and end_step must satisfy 0 <= start_step < end_step <= %d (UNet calls of %s with %d "
                        + "steps), got %d and %d", scheduler.steps(), job.scheduler(), job.steps(), job.startStep(), end);
        NoiseSource noise = new NoiseSource(job.seeds(), noiseKernel);

        // 2. initial latents: per-image seeded noise scaled by the scheduler's sigma (drawn even when resuming,
        //    so that the generators are where an uninterrupted run would have them)
        FloatTensor first = noise.randn(shape);
        FloatTensor latents = scale(new FloatTensor(shape, first.data().clone()), scheduler.initNoiseSigma());
        int start = job.startStep();
        int initialDraws = 1; // noise tensors each generator drew before the first step
        DenoiseRun.Inpaint inpaint = null;
        DenoiseRun.InpaintingInput inpaintingInput = null;
        if (job.imageToImage() != null) {
            // image-to-image, as diffusers' img2img prepare_latents: the first draw above was the posterior sample
            // (Vae.Encode drew it, from the same seeds); the second noises the image to where the run starts
            DenoiseJob.ImageToImage i2i = job.imageToImage();
            start = i2i.startStep(job.steps()) * scheduler.order();
            // inpainting at strength 1 starts from that noise alone (diffusers' inpaint is_strength_max); an
            // inpainting UNet then has no init image encoded, so its run's noise is the first draw
            boolean fromNoise = i2i.mask() != null && i2i.strength() == 1f;
            boolean noPosterior = unet.inpaints() && fromNoise;
            FloatTensor imageNoise = noPosterior ? first : noise.randn(shape);
            initialDraws = noPosterior ? 1 : 2;
            latents = fromNoise ? scale(new FloatTensor(shape, imageNoise.data().clone()), scheduler.initNoiseSigma())
                    : scheduler.addNoise(i2i.imageLatents(), imageNoise, start);
            if (unet.inpaints()) {
                noise.randn(shape); // the masked image's sample (Vae.Encode drew it, skip_draws = the draws above)
                initialDraws++;
                inpaintingInput = new DenoiseRun.InpaintingInput(i2i.mask(), i2i.maskedImageLatents());
            } else if (i2i.mask() != null) {
                inpaint = new DenoiseRun.Inpaint(i2i.mask(), i2i.imageLatents(), imageNoise);
            }
        }
        if (job.initLatents() != null) {
            latents = job.initLatents();
        }
        for (int i = 0; i < job.startStep() && scheduler.stochastic(); i++) {
            noise.randn(shape); // the noise the skipped steps drew
        }
        if (job.resume() != null) {
            latents = resume(job, scheduler, noise, shape, start, end, initialDraws);
            start = job.resume().step();
        }

        // 3. text conditioning for the UNet rows: [uncond x B, text x B] with guidance, else [text x B]
        FloatTensor text = perImage(job.promptEmbeds(), batch);
        FloatTensor context = job.guided() ? FloatTensor.concat(perImage(job.negativeEmbeds(), batch), text) : text;

        // 4. the loop is the run's: modelInput -> UNet -> advance (guidance, scheduler step), until done
        StepListener counted = new StepListener() {
            @Override
            public void onStep(int step, int total, double timestep, List<byte[]> previews) {
                stepsRun.incrementAndGet();
                listener.onStep(step, total, timestep, previews);
            }

            @Override
            public void onCheckpoint(Checkpoint checkpoint) {
                listener.onCheckpoint(checkpoint);
            }

            @Override
            public boolean cancelled() {
                return listener.cancelled();
            }
        };
        return new DenoiseRun(job, counted, scheduler, noise, latents, context, preview, start, end, inpaint,
                inpaintingInput);
    }

    /**
     * Brings a fresh scheduler and the generators to the job's checkpoint, exactly: the scheduler first runs the
     * checkpoint's steps on one-element stand-in data (its counters and scalars depend on the step index alone,
     * so they end right), which also shows the history layout the checkpoint must have and how many noise
     * tensors those steps drew; then the checkpoint's history goes in and the generators skip as many draws.
     * Returns the checkpoint's latents.
     */
    private FloatTensor resume(DenoiseJob job, Scheduler scheduler, NoiseSource noise, long[] shape, int start,
                               int end, int before) {
        Checkpoint c = job.resume();
        InvalidRequestException.require(job.initLatents() == null && job.startStep() == 0,
                "resume excludes init_latents and start_step (a checkpoint carries both)");
        InvalidRequestException.require(c.step() > start && c.step() < end,
                "resume.step must be in [%d, %d) for %s with %d steps, got %d", start + 1, end, job.scheduler(),
                job.steps(), c.step());
        InvalidRequestException.require(c.latents() != null && Arrays.equals(c.latents().shape(), shape),
                "resume.latents must have shape %s, got %s", Arrays.toString(shape),
                c.latents() == null ? "none" : Arrays.toString(c.latents().shape()));
        NoiseSource standInNoise = new NoiseSource(new long[] {0}, noiseKernel);
        FloatTensor standIn = FloatTensor.zeros(1);
        for (int i = start; i < c.step(); i++) {
            scheduler.step(standIn, i, standIn, standInNoise);
        }
        // the initial noise (image-to-image: the posterior sample, the noise, an inpainting UNet's masked image),
        // then what the steps drew
        long draws = before + standInNoise.draws();
        InvalidRequestException.require(c.noiseDraws() == draws,
                "resume.noise_draws must be %d at step %d of %s, got %d", draws, c.step(), job.scheduler(),
                c.noiseDraws());
        Scheduler.History expected = scheduler.history();
        InvalidRequestException.require(c.history().sameLayout(expected, c.latents().data().length),
                "resume.history must hold %s arrays of %d values at step %d of %s, got %s", expected.layout(),
                c.latents().data().length, c.step(), job.scheduler(), InvalidRequestException.shown(
                        c.history().layout()));
        scheduler.restore(c.history());
        for (long i = before; i < draws; i++) { // (prepare drew the first `before`)
            noise.randn(shape);
        }
        return new FloatTensor(shape, c.latents().data().clone());
    }

    private static FloatTensor scale(FloatTensor t, float s) {
        if (s == 1f) {
            return t;
        }
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] *= s;
        }
        return t;
    }

    private static FloatTensor perImage(FloatTensor embeds, int batch) {
        return embeds.dim(0) == batch ? embeds : embeds.tile(batch);
    }

    private void validate(DenoiseJob job) {
        int m = geometry.sizeMultiple();
        InvalidRequestException.require(job.width() > 0 && job.width() % m == 0 && job.height() > 0
                        && job.height() % m == 0,
                "width and height must be positive multiples of %d for model %s, got %dx%d", m, modelName,
                job.width(), job.height());
        InvalidRequestException.require(job.steps() >= 1 && job.steps() <= MAX_STEPS,
                "steps must be in [1, %d], got %d", MAX_STEPS, job.steps());
        InvalidRequestException.require(job.seeds().length >= 1 && job.seeds().length <= MAX_IMAGES,
                "seeds: one per image, between 1 and %d, got %d", MAX_IMAGES, job.seeds().length);
        InvalidRequestException.require(Float.isFinite(job.guidanceScale()) && job.guidanceScale() >= 0,
                "guidance_scale must be finite and >= 0, got %s", job.guidanceScale());
        InvalidRequestException.require(job.eta() >= 0 && job.eta() <= 1, "eta must be in [0, 1], got %s",
                job.eta());
        InvalidRequestException.require(job.startStep() >= 0 && job.endStep() >= 0,
                "start_step and end_step must be >= 0, got %d and %d", job.startStep(), job.endStep());
        if (job.imageToImage() != null) {
            validateImageToImage(job);
        }
        if (unet.inpaints()) {
            DenoiseJob.ImageToImage i2i = job.imageToImage();
            InvalidRequestException.require(i2i != null && i2i.mask() != null && i2i.maskedImageLatents() != null,
                    "this model's UNet inpaints (%d input channels: latents, mask, masked-image latents): a job "
                            + "needs image_latents, mask and masked_image_latents", unet.inputChannels());
            long[] want = {job.seeds().length, unet.latentChannels(), job.height() / geometry.vaeFactor(),
                job.width() / geometry.vaeFactor()};
            InvalidRequestException.require(Arrays.equals(i2i.maskedImageLatents().shape(), want),
                    "masked_image_latents must have shape %s, got %s", Arrays.toString(want),
                    Arrays.toString(i2i.maskedImageLatents().shape()));
        }
        InvalidRequestException.require(job.previewInterval() >= 0, "preview_interval must be >= 0");
        Schedulers.requireKnown(job.scheduler());
        checkEmbeds(job.promptEmbeds(), "prompt_embeds", job.seeds().length);
        if (job.guided()) {
            InvalidRequestException.require(job.negativeEmbeds() != null,
                    "negative_embeds are required when guidance_scale > 1 (got %s)", job.guidanceScale());
            checkEmbeds(job.negativeEmbeds(), "negative_embeds", job.seeds().length);
            InvalidRequestException.require(Arrays.equals(job.promptEmbeds().shape(), job.negativeEmbeds().shape()),
                    "negative_embeds shape %s must equal prompt_embeds shape %s",
                    Arrays.toString(job.negativeEmbeds().shape()), Arrays.toString(job.promptEmbeds().shape()));
        }
        if (job.initLatents() != null) {
            long[] want = {job.seeds().length, unet.latentChannels(), job.height() / geometry.vaeFactor(),
                job.width() / geometry.vaeFactor()};
            InvalidRequestException.require(Arrays.equals(job.initLatents().shape(), want),
                    "init_latents must have shape %s, got %s", Arrays.toString(want),
                    Arrays.toString(job.initLatents().shape()));
        }
    }

    private void validateImageToImage(DenoiseJob job) {
        DenoiseJob.ImageToImage i2i = job.imageToImage();
        InvalidRequestException.require(job.initLatents() == null && job.startStep() == 0,
                "image_latents exclude init_latents and start_step (the strength sets where the run starts)");
        float s = i2i.strength();
        InvalidRequestException.require(s > 0 && s <= 1, "strength must be in (0, 1] with image_latents, got %s", s);
        InvalidRequestException.require(i2i.startStep(job.steps()) < job.steps(), "strength %s of %d steps runs "
                + "no step (the last int(steps x strength) run): raise strength or steps", s, job.steps());
        long[] want = {job.seeds().length, unet.latentChannels(), job.height() / geometry.vaeFactor(),
            job.width() / geometry.vaeFactor()};
        if (i2i.mask() != null) {
            long[] m = i2i.mask().shape();
            InvalidRequestException.require(m.length == 4 && (m[0] == 1 || m[0] == want[0]) && m[1] == 1
                            && m[2] == want[2] && m[3] == want[3],
                    "mask must be [1 or %d, 1, %d, %d] (latent resolution), got %s", want[0], want[2], want[3],
                    Arrays.toString(m));
        }
        InvalidRequestException.require(i2i.imageLatents() != null
                        && Arrays.equals(i2i.imageLatents().shape(), want),
                "image_latents must have shape %s, got %s", Arrays.toString(want),
                i2i.imageLatents() == null ? "none" : Arrays.toString(i2i.imageLatents().shape()));
    }

    private void checkEmbeds(FloatTensor e, String field, int batch) {
        InvalidRequestException.require(e != null, "%s is required", field);
        long[] s = e.shape();
        InvalidRequestException.require(s.length == 3 && (s[0] == 1 || s[0] == batch),
                "%s must be [1 or %d, tokens, width], got %s", field, batch, Arrays.toString(s));
        InvalidRequestException.require(unet.contextLength() < 0 || s[1] == unet.contextLength(),
                "%s must have %d tokens per row, as the UNet's encoder_hidden_states, got %d", field,
                unet.contextLength(), s[1]);
        InvalidRequestException.require(unet.contextWidth() < 0 || s[2] == unet.contextWidth(),
                "%s width %d does not match the UNet's encoder_hidden_states width %d (text encoder and UNet "
                        + "of different models?)", field, s[2], unet.contextWidth());
    }

    @Override
    public void close() {
        if (batcher != null) {
            batcher.close(); // stops calling the UNet before it closes
        }
        unet.close();
    }
}
