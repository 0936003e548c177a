package org.sdserve.vae.app;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import io.grpc.BindableService;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.eval.extract.FeatureExtractor;
import org.sdserve.vae.core.Vae;
import org.sdserve.vae.grpc.FeaturesService;
import org.sdserve.vae.grpc.VaeService;

/** What the vae-svc process owns: the VAE and, when configured, a feature extractor; closed together. */
record VaeModels(Vae vae, FeatureExtractor extractor) implements AutoCloseable {
    static VaeModels load(ModelDirectory model, Optional<String> extractorDir, ExecutionOptions opts) {
        Vae vae = Vae.load(model, opts);
        try {
            return new VaeModels(vae, extractorDir.map(d -> FeatureExtractor.load(Path.of(d), opts)).orElse(null));
        } catch (RuntimeException e) {
            vae.close();
            throw e;
        }
    }

    /** Vae, and Features when there is an extractor. */
    List<BindableService> services(TorchGenerator.Kernel noiseKernel) {
        List<BindableService> services = new ArrayList<>(List.of(new VaeService(vae, noiseKernel)));
        if (extractor != null) {
            services.add(new FeaturesService(extractor));
        }
        return services;
    }

    @Override
    public void close() {
        if (extractor != null) {
            extractor.close();
        }
        vae.close();
    }
}
