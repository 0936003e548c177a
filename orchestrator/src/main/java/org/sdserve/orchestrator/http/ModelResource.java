package org.sdserve.orchestrator.http;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import java.util.List;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import org.sdserve.orchestrator.app.OrchestratorServer;
import org.sdserve.orchestrator.core.Limits;
import org.sdserve.orchestrator.core.RequestValidator;
import org.sdserve.proto.v1.ModelDescription;

/** What a form needs before it asks: the served model's sizes and schedulers, the defaults and the limits. */
@Path("/v1/model")
@Tag(name = "model")
public class ModelResource {
    @Inject
    OrchestratorServer server;

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "Model")
    public record Model(String model, int defaultWidth, int defaultHeight,
                        @Schema(description = "width and height must be multiples of this") int sizeMultiple,
                        List<String> schedulers, String defaultScheduler, int defaultSteps, float defaultGuidanceScale,
                        int maxSide, int maxSteps, int maxImages,
                        @Schema(description = "width x height x num_images at most") long maxPixels,
                        int maxPromptChars) {
    }

    @GET
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "The served model, defaults and limits")
    public Model model() {
        ModelDescription m = server.engine().model();
        Limits l = server.engine().limits();
        return new Model(m.getModel(), m.getDefaultWidth(), m.getDefaultHeight(), m.getSizeMultiple(),
                m.getSchedulersList(), m.getDefaultScheduler(), RequestValidator.DEFAULT_STEPS,
                RequestValidator.DEFAULT_GUIDANCE, l.maxSide(), l.maxSteps(), l.maxImages(), l.maxPixels(),
                RequestValidator.MAX_PROMPT_CHARS);
    }
}
