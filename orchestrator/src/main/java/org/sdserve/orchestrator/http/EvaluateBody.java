package org.sdserve.orchestrator.http;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import java.util.List;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.proto.v1.EvaluateRequest;

/**
 * An evaluation run as JSON: the fields of {@code sd.v1.EvaluateRequest} under their proto names, with its defaults
 * and limits (checked by the Evaluator, as for gRPC); here only what JSON can say and the proto cannot hold.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
@Schema(name = "EvaluateRequest", description = "An evaluation run; omitted fields take the server's defaults")
public record EvaluateBody(
        @Schema(description = "omitted = 512; at least 16, at most sd.orchestrator.max-evaluation-images (2048)")
        Long images,
        @Schema(description = "denoising steps of each image; omitted = 25")
        Long steps,
        @Schema(description = "omitted = ddim")
        String scheduler,
        @Schema(description = "omitted = 7.5")
        Float guidanceScale,
        @Schema(description = "image i of the run has seed + i; omitted = 0")
        Long seed,
        @Schema(description = "omitted = the demo model's prompt set (judged for prompt adherence); else at most "
                + "1000 prompts, one per job in turn")
        List<String> prompts,
        @Schema(description = "omitted = 8; at most the server's num_images limit")
        Long imagesPerJob,
        @Schema(description = "pixels; omitted = the model's default")
        Long width,
        @Schema(description = "pixels; omitted = the model's default")
        Long height) {

    EvaluateRequest toProto() {
        EvaluateRequest.Builder b = EvaluateRequest.newBuilder().setImages(GenerateBody.uint32("images", images))
                .setSteps(GenerateBody.uint32("steps", steps))
                .setImagesPerJob(GenerateBody.uint32("images_per_job", imagesPerJob))
                .setWidth(GenerateBody.uint32("width", width)).setHeight(GenerateBody.uint32("height", height));
        if (scheduler != null) {
            b.setScheduler(scheduler);
        }
        if (guidanceScale != null) {
            b.setGuidanceScale(guidanceScale);
        }
        if (seed != null) {
            InvalidRequestException.require(seed >= 0 && seed <= GenerateBody.MAX_SEED, "seed must be in [0, %d], "
                    + "got %d", GenerateBody.MAX_SEED, seed);
            b.setSeed(seed);
        }
        if (prompts != null) {
            InvalidRequestException.require(!prompts.contains(null), "prompts must be strings, not null");
            b.addAllPrompts(prompts);
        }
        return b.build();
    }
}
