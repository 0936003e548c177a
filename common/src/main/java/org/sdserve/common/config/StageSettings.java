package org.sdserve.common.config;

import io.smallrye.config.WithDefault;
import java.time.Duration;
import org.sdserve.common.noise.TorchGenerator;
import org.sdserve.common.onnx.ExecutionOptions;

/**
 * Settings every stage service shares; each service's {@code @ConfigMapping} nests one of these.
 * Environment variables follow MicroProfile's rules, e.g. {@code SD_DENOISER_PORT}, {@code SD_DENOISER_DEVICE}.
 */
public interface StageSettings {
    /** The Stable Diffusion ONNX export to serve (diffusers / optimum layout). */
    @WithDefault("models/sd-shapes-64")
    String modelDir();

    /**
     * The address to listen on: loopback unless told otherwise, so that a process started by hand is not open to
     * the network; the container images set {@code 0.0.0.0} (deploy/images/Containerfile.service).
     */
    @WithDefault("127.0.0.1")
    String host();

    int port();

    /**
     * The HTTP management port, on {@link #host()}: Prometheus metrics at /q/metrics, liveness and readiness at
     * /q/health/live and /q/health/ready (each application's properties give its default: 905x beside 5005x).
     */
    int managementPort();

    /** TLS on the gRPC port: the server's certificate chain (PEM); with tls-key. Unset = plaintext. */
    java.util.Optional<String> tlsCert();

    /** Its private key (PEM, PKCS#8). */
    java.util.Optional<String> tlsKey();

    /** With TLS: a CA that callers' client certificates must chain to (mutual TLS); unset = no client certificate. */
    java.util.Optional<String> tlsClientCa();

    /** This service's TLS, if configured. */
    default java.util.Optional<org.sdserve.common.grpc.Tls> tls() {
        java.util.Optional<org.sdserve.common.grpc.Tls> t = org.sdserve.common.grpc.Tls.of(tlsCert(), tlsKey(),
                tlsClientCa());
        if (t.isPresent() && t.get().cert() == null) {
            throw new IllegalArgumentException("tls-client-ca needs tls-cert and tls-key as well");
        }
        return t;
    }

    /** Largest message the service accepts, in bytes. */
    @WithDefault("67108864")
    int maxMessageBytes();

    /** "cpu" or "cuda". */
    @WithDefault("cpu")
    String device();

    @WithDefault("0")
    int deviceId();

    /** Threads of the process-wide ONNX Runtime pool; 0 = all cores. */
    @WithDefault("0")
    int threads();

    /** With device=cuda: fail at start-up rather than fall back to CPU. */
    @WithDefault("false")
    boolean requireGpu();

    /**
     * Which torch CPU kernel the seeded noise reproduces (denoiser, VAE encoder): "avx2" (what torch runs on x86
     * machines with AVX2, most users) or "default" (torch's scalar kernel, e.g. on ARM).
     */
    @WithDefault("avx2")
    TorchGenerator.Kernel noiseKernel();

    /**
     * Whether idle ONNX Runtime threads spin-wait. Off by default: stage processes often share cores, and a
     * spinning idle stage steals them from the busy one. Turn on when a process has its cores to itself.
     */
    @WithDefault("false")
    boolean spinWait();

    /**
     * How long a client connection lives before the server ends it (GOAWAY; its calls finish first), so that
     * clients resolving a {@code dns:///} name re-resolve it and spread over replicas added since.
     */
    @WithDefault("PT5M")
    Duration maxConnectionAge();

    default ExecutionOptions execution() {
        return new ExecutionOptions(device(), deviceId(), threads(), requireGpu(), spinWait());
    }
}
