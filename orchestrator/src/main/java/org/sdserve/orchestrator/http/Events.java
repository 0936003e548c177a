package org.sdserve.orchestrator.http;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import java.util.List;
import java.util.Map;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.sdserve.orchestrator.core.Job;
import org.sdserve.orchestrator.core.JobEvent;

/**
 * The JSON of each Server-Sent Event of a job (its SSE {@code event:} name is {@link #name}; its {@code id:} is the
 * job's seq) and of the other answers. Field names are the proto's (snake_case).
 */
final class Events {
    private Events() {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "Accepted", description = "event: accepted. First event of every job")
    record Accepted(String jobId, GenerateBody resolved, List<Long> seeds,
                    @Schema(description = "GET: this job's events (text/event-stream)") String eventsUrl) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "Queued", description = "event: queued. While the job waits for a slot; 1 = next to start")
    record Queued(int position, int queueDepth) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "Progress", description = "event: progress. One per stage step (denoising: per UNet step, "
            + "throttled by the denoiser's progress-interval when it runs in its own process)")
    record Progress(@Schema(enumeration = {"text_encoding", "denoising", "decoding"}) String stage, int step,
                    int totalSteps, float timestep, long elapsedMs,
                    @Schema(description = "0 = unknown") long estimatedRemainingMs) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "Preview", description = "event: preview. The predicted clean image of one image at a step, at "
            + "latent resolution")
    record Preview(int step, int index, @Schema(description = "PNG, base64") byte[] png) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "Image", description = "event: image. One per generated image; the PNG is at url")
    record Image(int index, long seed, int width, int height, String url) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "Completed", description = "event: completed. Last event of a job that succeeded")
    record Completed(@Schema(description = "text_encoding, denoising, decoding: wall time per stage")
                     Map<String, Long> stageMs, long totalMs) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "Latents", description = "event: latents. With latents_interval: the working latents after step "
            + "UNet calls, or (final) those the VAE decodes; in the UNet's space. The bytes are at url, as a NumPy "
            + ".npy file (the latest snapshot the job holds)")
    record Latents(int step, @com.fasterxml.jackson.annotation.JsonProperty("final") boolean last, List<Long> shape,
                   @Schema(enumeration = {"float32"}) String dtype, String url) {
    }

    /** The SSE event name of a job event. */
    static String name(JobEvent e) {
        if (e instanceof JobEvent.Accepted) {
            return "accepted";
        } else if (e instanceof JobEvent.Queued) {
            return "queued";
        } else if (e instanceof JobEvent.Progress) {
            return "progress";
        } else if (e instanceof JobEvent.Preview) {
            return "preview";
        } else if (e instanceof JobEvent.Image) {
            return "image";
        } else if (e instanceof JobEvent.Latents) {
            return "latents";
        } else if (e instanceof JobEvent.Completed) {
            return "completed";
        }
        throw new IllegalArgumentException("unknown event " + e.getClass());
    }

    /** The JSON of an event of job {@code jobId}. */
    static Object json(String jobId, JobEvent event) {
        if (event instanceof JobEvent.Accepted a) {
            return new Accepted(a.jobId(), GenerateBody.of(a.resolved()), a.seeds(), eventsUrl(a.jobId()));
        } else if (event instanceof JobEvent.Queued q) {
            return new Queued(q.position(), q.depth());
        } else if (event instanceof JobEvent.Progress p) {
            return new Progress(stage(p.stage()), p.step(), p.totalSteps(), p.timestep(), p.elapsedMs(),
                    p.remainingMs());
        } else if (event instanceof JobEvent.Preview p) {
            return new Preview(p.step(), p.index(), p.png().toByteArray());
        } else if (event instanceof JobEvent.Image i) {
            return new Image(i.index(), i.seed(), i.width(), i.height(), imageUrl(jobId, i.index()));
        } else if (event instanceof JobEvent.Latents l) {
            return new Latents(l.step(), l.last(), l.latents().getShapeList(), "float32", latentsUrl(jobId));
        } else if (event instanceof JobEvent.Completed c) {
            return new Completed(c.stageMs(), c.totalMs());
        }
        throw new IllegalArgumentException("unknown event " + event.getClass());
    }

    static String eventsUrl(String jobId) {
        return "/v1/jobs/" + jobId + "/events";
    }

    static String imageUrl(String jobId, int index) {
        return "/v1/jobs/" + jobId + "/images/" + index + ".png";
    }

    static String latentsUrl(String jobId) {
        return "/v1/jobs/" + jobId + "/latents.npy";
    }

    static String stage(JobEvent.Stage s) {
        return switch (s) {
            case TEXT_ENCODING -> "text_encoding";
            case IMAGE_ENCODING -> "image_encoding";
            case DENOISING -> "denoising";
            case DECODING -> "decoding";
        };
    }

    static String state(Job.State s) {
        return s.name().toLowerCase(java.util.Locale.ROOT);
    }
}
