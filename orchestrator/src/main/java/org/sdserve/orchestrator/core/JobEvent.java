package org.sdserve.orchestrator.core;

import com.google.protobuf.ByteString;
import java.util.List;
import java.util.Map;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * What a job tells its watchers, in its log's order: Accepted first, Queued while it waits, Progress per stage
 * step, Previews and Latents when asked for, one Image per image, Completed last (or the log ends with a failure).
 * Transport adapters map these to their wire format (gRPC, HTTP/SSE).
 */
public sealed interface JobEvent {
    /** The pipeline's stages, in order. */
    enum Stage { TEXT_ENCODING, IMAGE_ENCODING, DENOISING, DECODING }

    /** The request with every default filled in, and the seed of each image. */
    record Accepted(String jobId, GenerateRequest resolved, List<Long> seeds) implements JobEvent {
    }

    /** Waiting for a slot: 1 = next to start; depth counts the waiting jobs, this one included. */
    record Queued(int position, int depth) implements JobEvent {
    }

    /** step is 1-based within the stage; timestep is the scheduler's (denoising only); remaining 0 = unknown. */
    record Progress(Stage stage, int step, int totalSteps, float timestep, long elapsedMs, long remainingMs)
            implements JobEvent {
    }

    /** The predicted clean image of one image index at a step, as a PNG at latent resolution. */
    record Preview(int step, int index, ByteString png) implements JobEvent {
    }

    /**
     * The working latents after {@code step} UNet calls, or ({@code last}) the final ones the VAE decodes: float32
     * [images, channels, h, w] in the UNet's space. Only when the request has a latents_interval.
     */
    record Latents(int step, boolean last, org.sdserve.proto.v1.Tensor latents) implements JobEvent {
    }

    /** One generated image, an 8-bit RGB PNG. */
    record Image(int index, long seed, int width, int height, ByteString png) implements JobEvent {
    }

    /** Wall time per stage ("text_encoding", "denoising", "decoding") and in all. */
    record Completed(Map<String, Long> stageMs, long totalMs) implements JobEvent {
    }

    /**
     * Events that only the latest of their kind matters for: a log keeps one per key, so that a slow or
     * re-attaching watcher gets the latest position, progress and preview instead of every one. Null: kept all.
     */
    static Object supersedeKey(JobEvent e) {
        if (e instanceof Queued || e instanceof Progress) {
            return e.getClass();
        }
        if (e instanceof Preview p) {
            return List.of(Preview.class, p.index());
        }
        if (e instanceof Latents l && !l.last()) {
            return Latents.class;
        }
        return null;
    }

    /** Bytes an event holds beyond its fixed fields (its PNG), for the retention budget. */
    static long payloadBytes(JobEvent e) {
        if (e instanceof Preview p) {
            return p.png().size();
        }
        if (e instanceof Image i) {
            return i.png().size();
        }
        if (e instanceof Latents l) {
            return l.latents().getData().size();
        }
        return 0;
    }
}
