package org.sdserve.orchestrator.core;

import java.util.Locale;
import java.util.function.LongSupplier;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.image.RgbImage;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.ModelDescription;
import org.sdserve.proto.v1.Priority;

/**
 * Checks a GenerateRequest field by field against the limits and the served model, and fills in the
 * defaults. Every refusal says which field, what was expected and what came.
 */
public final class RequestValidator {
    public static final int DEFAULT_STEPS = 25;
    public static final float DEFAULT_GUIDANCE = 7.5f;
    public static final float MAX_GUIDANCE = 100f;
    public static final int MAX_PROMPT_CHARS = 10_000;
    /** diffusers' StableDiffusionImg2ImgPipeline default (the inpaint pipeline's is 1). */
    public static final float DEFAULT_STRENGTH = 0.8f;

    private final Limits limits;
    private final LongSupplier seedSource;

    /** @param seedSource picks a seed when the request has none; torch uses the low 32 bits of a seed */
    public RequestValidator(Limits limits, LongSupplier seedSource) {
        this.limits = limits;
        this.seedSource = seedSource;
    }

    /** The request with every default resolved (seed included), or an {@link InvalidRequestException}. */
    public Limits limits() {
        return limits;
    }

    public GenerateRequest resolve(GenerateRequest r, ModelDescription model) {
        String prompt = r.getPrompt();
        require(!prompt.isBlank(), "prompt is required and must not be blank");
        require(prompt.length() <= MAX_PROMPT_CHARS, "prompt must be at most %d characters, got %d",
                MAX_PROMPT_CHARS, prompt.length());
        require(r.getNegativePrompt().length() <= MAX_PROMPT_CHARS,
                "negative_prompt must be at most %d characters, got %d", MAX_PROMPT_CHARS,
                r.getNegativePrompt().length());
        require(!r.hasStrength() || !r.getInitImage().isEmpty(),
                "strength goes with init_image (image-to-image), which is unset");
        require(r.getMaskImage().isEmpty() || !r.getInitImage().isEmpty(),
                "mask_image goes with init_image (inpainting repaints part of it), which is unset");
        require(!model.getInpainting() || (!r.getInitImage().isEmpty() && !r.getMaskImage().isEmpty()),
                "this model's UNet inpaints (it takes a mask): give init_image and mask_image");
        RgbImage init = r.getInitImage().isEmpty() ? null
                : RgbImage.fromPng(r.getInitImage().toByteArray(), "init_image", limits.maxSide());
        RgbImage mask = r.getMaskImage().isEmpty() ? null
                : RgbImage.fromPng(r.getMaskImage().toByteArray(), "mask_image", limits.maxSide());
        require(r.getModel().isEmpty() || r.getModel().equals(model.getModel()),
                "model: this server serves \"%s\", got \"%s\" (or leave it empty)", model.getModel(),
                InvalidRequestException.shown(r.getModel()));

        int m = model.getSizeMultiple();
        // uint32 fields arrive as Java ints: values of 2^31 and more read negative unless widened unsigned
        long width = r.getWidth() != 0 ? unsigned(r.getWidth()) : init != null ? init.width() : model.getDefaultWidth();
        long height = r.getHeight() != 0 ? unsigned(r.getHeight())
                : init != null ? init.height() : model.getDefaultHeight();
        if (init != null && (r.getWidth() == 0 || r.getHeight() == 0)) {
            require(width % m == 0 && height % m == 0, "init_image is %dx%d, and width and height come from it "
                    + "when unset: its sides must be multiples of %d (or set width and height: it is resized to "
                    + "them)", init.width(), init.height(), m);
        }
        checkSide("width", width, m);
        checkSide("height", height, m);

        long steps = r.getSteps() == 0 ? DEFAULT_STEPS : unsigned(r.getSteps());
        require(steps >= 1 && steps <= limits.maxSteps(), "steps must be in [1, %d], got %d", limits.maxSteps(),
                steps);

        float guidance = r.hasGuidanceScale() ? r.getGuidanceScale() : DEFAULT_GUIDANCE;
        require(Float.isFinite(guidance) && guidance >= 0 && guidance <= MAX_GUIDANCE,
                "guidance_scale must be a finite number in [0, %s], got %s", MAX_GUIDANCE, guidance);

        String scheduler = r.getScheduler().isEmpty() ? model.getDefaultScheduler()
                : r.getScheduler().toLowerCase(Locale.ROOT);
        require(model.getSchedulersList().contains(scheduler), "scheduler: unknown \"%s\"; valid: %s",
                InvalidRequestException.shown(r.getScheduler()), String.join(", ", model.getSchedulersList()));
        require(Float.isFinite(r.getEta()) && r.getEta() >= 0 && r.getEta() <= 1, "eta must be in [0, 1], got %s",
                r.getEta());

        long images = r.getNumImages() == 0 ? 1 : unsigned(r.getNumImages());
        require(images >= 1 && images <= limits.maxImages(), "num_images must be in [1, %d], got %d",
                limits.maxImages(), images);
        long pixels = width * height * images;
        require(pixels <= limits.maxPixels(), "width x height x num_images must be at most %d pixels, got %dx%dx%d",
                limits.maxPixels(), width, height, images);
        checkMemory(model, width, height, images, guidance > 1f);
        long previewInterval = unsigned(r.getPreviewInterval());
        require(previewInterval <= steps, "preview_interval must be in [0, steps=%d], got %d", steps,
                previewInterval);

        long latentsInterval = unsigned(r.getLatentsInterval());
        require(latentsInterval <= steps, "latents_interval must be in [0, steps=%d], got %d", steps,
                latentsInterval);

        require(r.getPriority() != Priority.UNRECOGNIZED, "priority must be PRIORITY_INTERACTIVE or PRIORITY_BATCH, "
                + "got %d", r.getPriorityValue());
        Priority priority = r.getPriority() == Priority.PRIORITY_UNSPECIFIED ? Priority.PRIORITY_INTERACTIVE
                : r.getPriority();

        GenerateRequest.Builder out = r.toBuilder();
        if (init != null) {
            float strength = r.hasStrength() ? r.getStrength() : mask != null ? 1f : DEFAULT_STRENGTH;
            require(strength > 0 && strength <= 1, "strength must be in (0, 1], got %s", strength);
            // diffusers' get_timesteps: the last int(steps x strength) steps run (strength as its decimal)
            long run = Math.min((long) (steps * Double.parseDouble(Float.toString(strength))), steps);
            require(run >= 1, "strength %s with %d steps runs no step (image-to-image runs the last int(steps x "
                    + "strength)): raise strength or steps", strength, steps);
            RgbImage sized = init.resized((int) width, (int) height);
            out.setStrength(strength);
            if (sized != init) {
                out.setInitImage(com.google.protobuf.ByteString.copyFrom(sized.toPng()));
            }
            RgbImage sizedMask = mask == null ? null : mask.resized((int) width, (int) height);
            if (sizedMask != mask) {
                out.setMaskImage(com.google.protobuf.ByteString.copyFrom(sizedMask.toPng()));
            }
        }
        long seed = r.hasSeed() ? r.getSeed() : seedSource.getAsLong();
        return out.setWidth((int) width).setHeight((int) height).setSteps((int) steps)
                .setGuidanceScale(guidance).setScheduler(scheduler).setNumImages((int) images).setSeed(seed)
                .setModel(model.getModel())
                .setPriority(priority).build();
    }

    /**
     * The denoiser replicas' activation memory (Describe): a job that could never fit is refused here, before any
     * compute, with the largest square size that would.
     */
    private static void checkMemory(ModelDescription model, long width, long height, long images, boolean guided) {
        long budget = model.getMemoryBudgetBytes();
        if (budget == 0 || model.getVaeFactor() == 0) {
            return;
        }
        double pair = model.getActivationBytesPerTokenPair();
        double token = model.getActivationBytesPerToken();
        long f = model.getVaeFactor();
        long tokens = (width / f) * (height / f);
        long rows = images * (guided ? 2 : 1);
        double cost = rows * (pair * tokens * tokens + token * tokens);
        if (cost <= budget) {
            return;
        }
        // the largest latent side s with rows x (pair s^4 + token s^2) <= budget, in pixels, a size multiple
        double s2 = pair > 0 ? (-token + Math.sqrt(token * token + 4 * pair * budget / rows)) / (2 * pair)
                : budget / (rows * Math.max(token, 1e-9));
        long side = (long) Math.floor(Math.sqrt(s2)) * f;
        side -= side % Math.max(1, model.getSizeMultiple());
        throw new InvalidRequestException(String.format(Locale.ROOT, "%dx%d with %d image(s)%s needs about %.1f GiB "
                + "of denoiser memory; its replicas' budget is %.1f GiB: at most %dx%d fits with %d image(s)",
                width, height, images, guided ? " and guidance" : "", cost / (1L << 30), budget / (double) (1L << 30),
                side, side, images));
    }

    private static long unsigned(int uint32) {
        return Integer.toUnsignedLong(uint32);
    }

    private void checkSide(String field, long value, int multiple) {
        require(value >= multiple && value <= limits.maxSide() && value % multiple == 0,
                "%s must be a multiple of %d in [%d, %d], got %d", field, multiple, multiple,
                limits.maxSide() - limits.maxSide() % multiple, value);
    }

    private static void require(boolean ok, String format, Object... args) {
        InvalidRequestException.require(ok, format, args);
    }

    /** Seeds of the images of a resolved request: seed + i, as unsigned 64-bit values. */
    public static long[] seeds(GenerateRequest resolved) {
        long[] s = new long[resolved.getNumImages()];
        for (int i = 0; i < s.length; i++) {
            s[i] = resolved.getSeed() + i;
        }
        return s;
    }
}
