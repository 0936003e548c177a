package org.sdserve.orchestrator.core;

import java.util.Locale;
import java.util.function.LongSupplier;
import org.sdserve.common.error.InvalidRequestException;
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

    private final Limits limits;
    private final LongSupplier seedSource;

    /** @param seedSource picks a seed when the request has none; torch uses the low 32 bits of a seed */
    public RequestValidator(Limits limits, LongSupplier seedSource) {
        this.limits = limits;
        this.seedSource = seedSource;
    }

    /** The request with every default resolved (seed included), or an {@link InvalidRequestException}. */
    public GenerateRequest resolve(GenerateRequest r, ModelDescription model) {
        String prompt = r.getPrompt();
        require(!prompt.isBlank(), "prompt is required and must not be blank");
        require(prompt.length() <= MAX_PROMPT_CHARS, "prompt must be at most %d characters, got %d",
                MAX_PROMPT_CHARS, prompt.length());
        require(r.getNegativePrompt().length() <= MAX_PROMPT_CHARS,
                "negative_prompt must be at most %d characters, got %d", MAX_PROMPT_CHARS,
                r.getNegativePrompt().length());
        require(r.getInitImage().isEmpty() && !r.hasStrength() && r.getMaskImage().isEmpty(),
                "init_image, strength and mask_image (image-to-image, inpainting) are not served yet; leave them unset");
        require(r.getModel().isEmpty() || r.getModel().equals(model.getModel()),
                "model: this server serves \"%s\", got \"%s\" (or leave it empty)", model.getModel(),
                InvalidRequestException.shown(r.getModel()));

        int m = model.getSizeMultiple();
        // uint32 fields arrive as Java ints: values of 2^31 and more read negative unless widened unsigned
        long width = r.getWidth() == 0 ? model.getDefaultWidth() : unsigned(r.getWidth());
        long height = r.getHeight() == 0 ? model.getDefaultHeight() : unsigned(r.getHeight());
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
        long previewInterval = unsigned(r.getPreviewInterval());
        require(previewInterval <= steps, "preview_interval must be in [0, steps=%d], got %d", steps,
                previewInterval);

        require(r.getPriority() != Priority.UNRECOGNIZED, "priority must be PRIORITY_INTERACTIVE or PRIORITY_BATCH, "
                + "got %d", r.getPriorityValue());
        Priority priority = r.getPriority() == Priority.PRIORITY_UNSPECIFIED ? Priority.PRIORITY_INTERACTIVE
                : r.getPriority();

        long seed = r.hasSeed() ? r.getSeed() : seedSource.getAsLong();
        return r.toBuilder().setWidth((int) width).setHeight((int) height).setSteps((int) steps)
                .setGuidanceScale(guidance).setScheduler(scheduler).setNumImages((int) images).setSeed(seed)
                .setModel(model.getModel())
                .setPriority(priority).build();
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
