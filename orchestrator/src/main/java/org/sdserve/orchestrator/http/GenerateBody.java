package org.sdserve.orchestrator.http;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.proto.v1.GenerateRequest;
import org.sdserve.proto.v1.Priority;

/**
 * A job as JSON: the fields of {@code sd.v1.GenerateRequest} under their proto names (snake_case), with the same
 * defaults and limits (a field left out is the server's default; {@code Accepted.resolved} reports the values used).
 * Numbers are checked here only for what JSON can say and the proto cannot hold (negative or over 32 bits); every
 * other check is the gRPC path's, so both answer the same message.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
@Schema(name = "GenerateRequest", description = "A text-to-image job (image-to-image with init_image); omitted fields "
        + "take the server's defaults")
public record GenerateBody(
        @Schema(required = true, description = "at most 75 tokens once tokenized", example = "a red circle on a blue background")
        String prompt,
        @Schema(description = "the unconditional branch of classifier-free guidance; empty = the empty prompt")
        String negativePrompt,
        @Schema(description = "pixels; 0 or omitted = the model's default; a multiple of the model's size multiple")
        Long width,
        @Schema(description = "pixels; as width")
        Long height,
        @Schema(description = "denoising steps; omitted = 25")
        Long steps,
        @Schema(description = "classifier-free guidance s; omitted = 7.5; <= 1 disables guidance")
        Float guidanceScale,
        @Schema(description = "omitted = the model's default (ddim); GET /v1/model lists them")
        String scheduler,
        @Schema(description = "omitted = the server picks one; image i uses seed + i; at most 2^53 - 1 (exact in "
                + "JavaScript)")
        Long seed,
        @Schema(description = "omitted = 1")
        Long numImages,
        @Schema(description = "0 or omitted = no previews; n = a preview every n steps and at the last")
        Long previewInterval,
        @Schema(description = "omitted = the served model; otherwise must name it")
        String model,
        @Schema(description = "DDIM's eta in [0, 1]; ignored by the other schedulers")
        Float eta,
        @Schema(description = "interactive (default) or batch: waiting batch jobs start after every waiting "
                + "interactive one", enumeration = {"interactive", "batch"})
        String priority,
        @Schema(description = "0 or omitted = none; n = a latents event every n steps and one of the final latents")
        Long latentsInterval,
        @Schema(description = "image-to-image: the init image, base64 (PNG, or any image Java reads); width and "
                + "height default to its size, another size is resized to them; not echoed in accepted")
        String initImage,
        @Schema(description = "with init_image: the share of the schedule that runs, in (0, 1]; omitted = 0.8 (the "
                + "last int(steps x strength) steps run)")
        Float strength,
        @Schema(description = "inpainting, with init_image: the mask, base64; white = repaint, black = keep; "
                + "strength then defaults to 1; not echoed in accepted")
        String maskImage) {

    /** Largest seed that JSON numbers carry exactly through JavaScript. */
    static final long MAX_SEED = (1L << 53) - 1;

    GenerateRequest toProto() {
        InvalidRequestException.require(prompt != null, "prompt is required and must not be blank");
        GenerateRequest.Builder b = GenerateRequest.newBuilder().setPrompt(prompt);
        if (negativePrompt != null) {
            b.setNegativePrompt(negativePrompt);
        }
        b.setWidth(uint32("width", width)).setHeight(uint32("height", height)).setSteps(uint32("steps", steps))
                .setNumImages(uint32("num_images", numImages))
                .setPreviewInterval(uint32("preview_interval", previewInterval))
                .setLatentsInterval(uint32("latents_interval", latentsInterval));
        if (guidanceScale != null) {
            b.setGuidanceScale(guidanceScale);
        }
        if (scheduler != null) {
            b.setScheduler(scheduler);
        }
        if (seed != null) {
            InvalidRequestException.require(seed >= 0 && seed <= MAX_SEED, "seed must be in [0, %d], got %d",
                    MAX_SEED, seed);
            b.setSeed(seed);
        }
        if (model != null) {
            b.setModel(model);
        }
        if (eta != null) {
            b.setEta(eta);
        }
        if (initImage != null) {
            b.setInitImage(base64("init_image", initImage));
        }
        if (strength != null) {
            b.setStrength(strength);
        }
        if (maskImage != null) {
            b.setMaskImage(base64("mask_image", maskImage));
        }
        if (priority != null) {
            b.setPriority(switch (priority) {
                case "interactive" -> Priority.PRIORITY_INTERACTIVE;
                case "batch" -> Priority.PRIORITY_BATCH;
                default -> throw new InvalidRequestException("priority must be \"interactive\" or \"batch\", got \""
                        + InvalidRequestException.shown(priority) + "\"");
            });
        }
        return b.build();
    }

    /** The request as the job resolved it, for the accepted event. */
    static GenerateBody of(GenerateRequest r) {
        return new GenerateBody(r.getPrompt(), r.getNegativePrompt(), Integer.toUnsignedLong(r.getWidth()),
                Integer.toUnsignedLong(r.getHeight()), Integer.toUnsignedLong(r.getSteps()),
                r.hasGuidanceScale() ? r.getGuidanceScale() : null, r.getScheduler(),
                r.hasSeed() ? r.getSeed() : null, Integer.toUnsignedLong(r.getNumImages()),
                Integer.toUnsignedLong(r.getPreviewInterval()), r.getModel(), r.getEta(),
                r.getPriority() == Priority.PRIORITY_BATCH ? "batch" : "interactive",
                Integer.toUnsignedLong(r.getLatentsInterval()), null, r.hasStrength() ? r.getStrength() : null, null);
    }

    /** Base64, line breaks allowed, or a data URL ({@code data:image/png;base64,...}) as a browser makes them. */
    private static com.google.protobuf.ByteString base64(String field, String value) {
        String data = value.startsWith("data:") && value.indexOf(',') > 0 ? value.substring(value.indexOf(',') + 1)
                : value;
        try {
            return com.google.protobuf.ByteString.copyFrom(java.util.Base64.getDecoder()
                    .decode(data.replaceAll("\\s", "")));
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(field + " must be base64 (standard alphabet), e.g. of a PNG file");
        }
    }

    static int uint32(String field, Long value) {
        if (value == null) {
            return 0;
        }
        InvalidRequestException.require(value >= 0 && value <= 0xffff_ffffL, "%s must be in [0, 4294967295], got %d",
                field, value);
        return (int) (long) value;
    }
}
