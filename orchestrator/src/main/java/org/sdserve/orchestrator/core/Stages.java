package org.sdserve.orchestrator.core;

import java.util.Iterator;
import org.sdserve.proto.v1.DecodeRequest;
import org.sdserve.proto.v1.DecodeResponse;
import org.sdserve.proto.v1.DenoiseEvent;
import org.sdserve.proto.v1.DenoiseRequest;
import org.sdserve.proto.v1.EncodeRequest;
import org.sdserve.proto.v1.EncodeResponse;
import org.sdserve.proto.v1.ExtractRequest;
import org.sdserve.proto.v1.ExtractResponse;
import org.sdserve.proto.v1.ExtractorDescription;
import org.sdserve.proto.v1.ModelDescription;
import org.sdserve.proto.v1.ReferenceFeaturesChunk;
import org.sdserve.proto.v1.VaeEncodeRequest;
import org.sdserve.proto.v1.VaeEncodeResponse;

/**
 * The three stages as a job calls them, in the messages of their contract (stages.proto). The gRPC clients
 * implement it ({@code grpc.StageClients}), over sockets or in-process. Each call runs in the caller's
 * {@link io.grpc.Context}: its deadline and cancellation stop the call in flight.
 */
public interface Stages {
    /** What the denoiser serves: the model the requests are validated against. */
    ModelDescription description();

    /** The prompts' last hidden states, [texts, tokens, width], and each text's token count. */
    EncodeResponse encode(EncodeRequest request);

    /** A step's progress per UNet call, then the final latents. */
    Iterator<DenoiseEvent> denoise(DenoiseRequest request);

    /** Latents [n, 4, h/8, w/8] to n PNGs. */
    DecodeResponse decode(DecodeRequest request);

    /** n PNGs to latents [n, 4, h/8, w/8]: image-to-image's start (a seeded posterior sample when seeded). */
    VaeEncodeResponse encodeImage(VaeEncodeRequest request);

    /**
     * Features [n, D] (and logits [n, K]) of n PNGs by the VAE stage's feature extractor (its Features service):
     * the quality measures' embedding. FAILED_PRECONDITION where that stage serves no extractor.
     */
    ExtractResponse extractFeatures(ExtractRequest request);

    /** The VAE stage's feature extractor and the size of its reference set; FAILED_PRECONDITION where it has none. */
    ExtractorDescription describeExtractor();

    /** The extractor's reference features, [rows, D] per chunk, in order. */
    Iterator<ReferenceFeaturesChunk> referenceFeatures();

    /**
     * null when every stage can be reached as far as is known, else which cannot and why: a job is then refused
     * before it spends any compute.
     */
    default String unavailable() {
        return null;
    }
}
