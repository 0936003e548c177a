package org.sdserve.orchestrator.embedded;

import io.grpc.BindableService;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.sdserve.common.grpc.ServiceHost;
import org.sdserve.common.grpc.StageChannels;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.denoise.batch.BatchSettings;
import org.sdserve.denoise.core.Denoiser;
import org.sdserve.denoise.grpc.DenoiserService;
import org.sdserve.eval.extract.FeatureExtractor;
import org.sdserve.orchestrator.app.LocalStages;
import org.sdserve.orchestrator.core.Stages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.text.core.TextEncoder;
import org.sdserve.text.grpc.TextEncoderService;
import org.sdserve.vae.core.Vae;
import org.sdserve.vae.grpc.FeaturesService;
import org.sdserve.vae.grpc.VaeService;

/**
 * The three stages in this process (and, when given one, the VAE stage's feature extractor), each served by its
 * own gRPC adapter on an in-process server, and the orchestrator's clients to them: the same code path as the
 * distributed deployment, without sockets.
 */
public final class EmbeddedStages implements LocalStages {
    private final List<AutoCloseable> owned = new ArrayList<>();
    private final StageClients clients;
    private final String id = UUID.randomUUID().toString();
    private Denoiser denoiser;

    private EmbeddedStages(ModelDirectory model, ExecutionOptions opts, TorchGenerator.Kernel kernel,
                           BatchSettings batching, Path extractorDir, int maxMessageBytes,
                           StageClients.Timeouts timeouts) {
        try {
            TextEncoder text = own(TextEncoder.load(model, opts));
            denoiser = own(Denoiser.load(model, opts, kernel, batching));
            denoiser.budgetMemory("auto", opts.wantsGpu());
            Vae vae = own(Vae.load(model, opts));
            ServiceHost th = own(ServiceHost.inProcess("text-" + id, maxMessageBytes,
                    List.of(new TextEncoderService(text))));
            ServiceHost dh = own(ServiceHost.inProcess("denoiser-" + id, maxMessageBytes,
                    List.of(new DenoiserService(denoiser))));
            List<BindableService> vaeServices = new ArrayList<>(List.of(new VaeService(vae, kernel)));
            if (extractorDir != null) {
                vaeServices.add(new FeaturesService(own(FeatureExtractor.load(extractorDir, opts))));
            }
            ServiceHost vh = own(ServiceHost.inProcess("vae-" + id, maxMessageBytes, vaeServices));
            th.serving();
            dh.serving();
            vh.serving();
            clients = own(new StageClients(StageChannels.inProcess("text-encoder", "text-" + id, maxMessageBytes),
                    StageChannels.inProcess("denoiser", "denoiser-" + id, maxMessageBytes),
                    StageChannels.inProcess("vae", "vae-" + id, maxMessageBytes), timeouts));
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    public static EmbeddedStages start(ModelDirectory model, ExecutionOptions opts, int maxMessageBytes,
                                       StageClients.Timeouts timeouts) {
        return new EmbeddedStages(model, opts, TorchGenerator.Kernel.AVX2, BatchSettings.DEFAULT, null,
                maxMessageBytes, timeouts);
    }

    public static EmbeddedStages start(ModelDirectory model, ExecutionOptions opts, TorchGenerator.Kernel kernel,
                                       int maxMessageBytes, StageClients.Timeouts timeouts) {
        return new EmbeddedStages(model, opts, kernel, BatchSettings.DEFAULT, null, maxMessageBytes, timeouts);
    }

    /** With the denoiser's step-level batching set explicitly ({@link BatchSettings#OFF} runs each job alone). */
    public static EmbeddedStages start(ModelDirectory model, ExecutionOptions opts, TorchGenerator.Kernel kernel,
                                       BatchSettings batching, int maxMessageBytes, StageClients.Timeouts timeouts) {
        return new EmbeddedStages(model, opts, kernel, batching, null, maxMessageBytes, timeouts);
    }

    /**
     * With a feature extractor too (a directory as models/scene-features), served by the in-process VAE stage as
     * the Features service: what Diffusion.Evaluate embeds images with.
     */
    public static EmbeddedStages start(ModelDirectory model, ExecutionOptions opts, TorchGenerator.Kernel kernel,
                                       BatchSettings batching, Path extractorDir, int maxMessageBytes,
                                       StageClients.Timeouts timeouts) {
        return new EmbeddedStages(model, opts, kernel, batching, extractorDir, maxMessageBytes, timeouts);
    }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    public StageClients clients() {
        return clients;
    }

    @Override
    public Stages stages() {
        return clients;
    }

    /**
     * The in-process server name of a stage ("text", "denoiser" or "vae"), for clients of its own (tests of
     * balancing and failover).
     */
    public String serverName(String stage) {
        return stage + "-" + id;
    }

    /** The denoising core, for its counters. */
    public Denoiser denoiser() {
        return denoiser;
    }

    /** Closes in reverse order: clients, servers, then the models. */
    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                System.getLogger(EmbeddedStages.class.getName()).log(System.Logger.Level.WARNING,
                        "closing " + owned.get(i) + " failed", e);
            }
        }
        owned.clear();
    }
}
