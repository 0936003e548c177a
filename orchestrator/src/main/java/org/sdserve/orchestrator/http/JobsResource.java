package org.sdserve.orchestrator.http;

import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.sse.Sse;
import jakarta.ws.rs.sse.SseEventSink;
import java.net.URI;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.media.Content;
import org.eclipse.microprofile.openapi.annotations.media.Schema;
import org.eclipse.microprofile.openapi.annotations.parameters.Parameter;
import org.eclipse.microprofile.openapi.annotations.responses.APIResponse;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.tensor.Npy;
import org.sdserve.orchestrator.app.OrchestratorServer;
import org.sdserve.orchestrator.core.Job;
import org.sdserve.orchestrator.core.JobEngine;
import org.sdserve.orchestrator.core.JobEvent;
import org.sdserve.orchestrator.core.JobSubscriber;

/**
 * The jobs over HTTP: the same engine, defaults, limits and messages as {@code sd.v1.Diffusion}. A job is submitted
 * with POST and followed with GET .../events (Server-Sent Events, which a browser's EventSource reconnects with
 * Last-Event-ID); as over gRPC, a job nobody follows is cancelled after sd.orchestrator.detach-grace.
 */
@Path("/v1/jobs")
@Tag(name = "jobs")
public class JobsResource {
    static final ScheduledExecutorService TIMERS = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "sse-keep-alive");
        t.setDaemon(true);
        return t;
    });

    @Inject
    OrchestratorServer server;
    @Inject
    com.fasterxml.jackson.databind.ObjectMapper json;
    @Inject
    RequestCaller caller;

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "Submit a job", description = "Validates the request as Diffusion.Generate does and "
            + "queues the job. Follow it at events_url within sd.orchestrator.detach-grace (10 s), or it is cancelled.")
    @APIResponse(responseCode = "201", description = "accepted",
            content = @Content(schema = @Schema(implementation = Events.Accepted.class)))
    @APIResponse(responseCode = "400", description = "a field outside the contract (field names it)",
            content = @Content(schema = @Schema(implementation = ApiError.class)))
    @APIResponse(responseCode = "429", description = "the queue is full",
            content = @Content(schema = @Schema(implementation = ApiError.class)))
    @APIResponse(responseCode = "503", description = "a stage cannot be reached, or the orchestrator is draining",
            content = @Content(schema = @Schema(implementation = ApiError.class)))
    public Response submit(GenerateBody body) {
        InvalidRequestException.require(body != null, "the body must be a JSON object with at least \"prompt\"");
        Accepting accepting = new Accepting();
        server.engine().submit(body.toProto(), null, accepting, caller.get())
                .close(); // followed by GET .../events from here on
        Events.Accepted a = accepting.accepted;
        return Response.created(URI.create("/v1/jobs/" + a.jobId())).entity(a).build();
    }

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.SERVER_SENT_EVENTS)
    @Operation(summary = "Submit a job and follow it", description = "With Accept: text/event-stream: as "
            + "Diffusion.Generate, the job's events on this response (see GET /v1/jobs/{id}/events)")
    @APIResponse(responseCode = "200", description = "the event stream, accepted first",
            content = @Content(mediaType = MediaType.SERVER_SENT_EVENTS))
    public void submitAndFollow(GenerateBody body, @Context SseEventSink sink, @Context Sse sse) {
        InvalidRequestException.require(body != null, "the body must be a JSON object with at least \"prompt\"");
        JobEngine engine = server.engine();
        SseStream stream = new SseStream(null, sink, sse, json, TIMERS);
        try {
            stream.follow(engine.submit(body.toProto(), null, stream, caller.get()));
        } catch (RuntimeException e) {
            stream.abandon();
            throw e;
        }
    }

    @GET
    @Path("/{id}/events")
    @Produces(MediaType.SERVER_SENT_EVENTS)
    @Operation(summary = "Follow a job", description = "Server-Sent Events: accepted, queued, progress, preview, "
            + "image, completed (each with id = the job's seq; data = the JSON of its schema), or failed (an Error) "
            + "last. Reconnect with Last-Event-ID (or ?after=) to go on after the last event seen; superseded "
            + "queued, progress and preview events are replayed as their latest. The stream ends after completed or "
            + "failed.")
    @APIResponse(responseCode = "200", description = "the event stream",
            content = @Content(mediaType = MediaType.SERVER_SENT_EVENTS))
    @APIResponse(responseCode = "404", description = "no such job (or it ended more than retain-finished ago)",
            content = @Content(mediaType = MediaType.APPLICATION_JSON, schema = @Schema(implementation = ApiError.class)))
    public void events(@PathParam("id") String id,
                       @Parameter(description = "seq of the last event seen") @HeaderParam("Last-Event-ID")
                       String lastEventId,
                       @Parameter(description = "as Last-Event-ID, for clients that cannot set headers")
                       @QueryParam("after") String after,
                       @Context SseEventSink sink, @Context Sse sse) {
        long afterSeq = seq(lastEventId != null ? lastEventId : after);
        JobEngine engine = server.engine();
        SseStream stream = new SseStream(id, sink, sse, json, TIMERS);
        try {
            stream.follow(engine.watch(id, afterSeq, stream, caller.get()));
        } catch (RuntimeException e) {
            stream.abandon();
            throw e;
        }
    }

    @DELETE
    @Path("/{id}")
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "Cancel a job", description = "As Diffusion.Cancel: a waiting job leaves the queue, a "
            + "running one stops before its next step; an ended job is left as it is. Answers the state it had.")
    @APIResponse(responseCode = "200", content = @Content(schema = @Schema(implementation = JobState.class)))
    @APIResponse(responseCode = "404", content = @Content(schema = @Schema(implementation = ApiError.class)))
    public JobState cancel(@PathParam("id") String id) {
        return new JobState(id, Events.state(server.engine().cancel(id, caller.get())));
    }

    @GET
    @Path("/{id}/images/{index}.png")
    @Produces("image/png")
    @Operation(summary = "An image of a job", description = "Available from its image event until the job is "
            + "forgotten (sd.orchestrator.retain-finished after it ends)")
    @APIResponse(responseCode = "200", content = @Content(mediaType = "image/png"))
    @APIResponse(responseCode = "404", content = @Content(mediaType = MediaType.APPLICATION_JSON,
            schema = @Schema(implementation = ApiError.class)))
    public Response image(@PathParam("id") String id, @PathParam("index") int index) {
        JobEvent.Image i = server.engine().image(id, index, caller.get());
        return Response.ok(i.png().toByteArray(), "image/png").header("Cache-Control", "private, max-age=3600")
                .header("Content-Disposition", "inline; filename=\"" + id + "-" + index + "-seed" + i.seed() + ".png\"")
                .build();
    }

    @GET
    @Path("/{id}/latents.npy")
    @Produces("application/octet-stream")
    @Operation(summary = "A job's latents", description = "For a job submitted with latents_interval: its final "
            + "latents once they exist, else the latest working snapshot, as a NumPy .npy file (float32, C order, "
            + "[num_images, channels, height / 8, width / 8], in the UNet's space); X-Latents-Step and "
            + "X-Latents-Final say which")
    @APIResponse(responseCode = "200", content = @Content(mediaType = "application/octet-stream"))
    @APIResponse(responseCode = "404", content = @Content(mediaType = MediaType.APPLICATION_JSON,
            schema = @Schema(implementation = ApiError.class)))
    public Response latents(@PathParam("id") String id) {
        JobEvent.Latents l = server.engine().latents(id, caller.get());
        return Response.ok(Npy.of(l.latents()), "application/octet-stream")
                .header("X-Latents-Step", l.step()).header("X-Latents-Final", l.last())
                .header("Content-Disposition", "attachment; filename=\"" + id + "-step" + l.step() + ".npy\"")
                .build();
    }

    @GET
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "List jobs", description = "As Diffusion.ListJobs: running, then waiting, then finished")
    public JobList list(@QueryParam("limit") Integer limit) {
        JobEngine.Listing jobs = server.engine().list(caller.get(),
                limit == null ? 0 : limit);
        List<JobInfo> out = jobs.jobs().stream().map(l -> {
            Job j = l.job();
            JobEvent.Progress p = j.lastProgress();
            return new JobInfo(j.id(), Events.state(j.state()), j.batch() ? "batch" : "interactive", l.position(),
                    p == null ? null : Events.stage(p.stage()), p == null ? 0 : p.step(),
                    p == null ? 0 : p.totalSteps(), j.ageMs(), j.watchers());
        }).toList();
        return new JobList(out, jobs.running(), jobs.waiting(), jobs.finished());
    }

    private static long seq(String text) {
        if (text == null || text.isEmpty()) {
            return 0;
        }
        try {
            long seq = Long.parseLong(text.trim());
            InvalidRequestException.require(seq >= 0, "Last-Event-ID must be a seq (a whole number >= 0), got %d",
                    seq);
            return seq;
        } catch (NumberFormatException e) {
            throw new InvalidRequestException("Last-Event-ID must be a seq (a whole number >= 0), got \""
                    + InvalidRequestException.shown(text) + "\"");
        }
    }

    /** Takes the Accepted event that submit delivers before it returns; the job's other events wait in its log. */
    private static final class Accepting implements JobSubscriber {
        Events.Accepted accepted;

        @Override
        public boolean ready() {
            return accepted == null;
        }

        @Override
        public void event(long seq, JobEvent event) {
            if (event instanceof JobEvent.Accepted a) {
                accepted = (Events.Accepted) Events.json(a.jobId(), a);
            }
        }

        @Override
        public void end(Throwable failure) {
        }
    }

    @com.fasterxml.jackson.databind.annotation.JsonNaming(
            com.fasterxml.jackson.databind.PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "JobState")
    public record JobState(String jobId,
                           @Schema(enumeration = {"queued", "running", "completed", "failed", "cancelled"})
                           String state) {
    }

    @com.fasterxml.jackson.databind.annotation.JsonNaming(
            com.fasterxml.jackson.databind.PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "JobInfo")
    public record JobInfo(String jobId, String state, String priority,
                          @Schema(description = "queued: 1 = next to start") int position,
                          @Schema(description = "running: the stage of its last progress") String stage, int step,
                          int totalSteps, long ageMs, int watchers) {
    }

    @com.fasterxml.jackson.databind.annotation.JsonNaming(
            com.fasterxml.jackson.databind.PropertyNamingStrategies.SnakeCaseStrategy.class)
    @Schema(name = "JobList")
    public record JobList(List<JobInfo> jobs, int running, int waiting, int finished) {
    }
}
