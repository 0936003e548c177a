package org.sdserve.orchestrator.local;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.sdserve.common.grpc.Tls;

/**
 * The four services as separate processes on this machine (distributed mode on loopback), started from their
 * packaged Quarkus applications ({@code <module>/target/quarkus-app/quarkus-run.jar}): one text encoder, N
 * denoiser replicas, one VAE, and an orchestrator that calls them. For tests and benchmarks.
 */
public final class LocalCluster implements AutoCloseable {
    /** One started service process. */
    public record Service(String module, int port, Process process, Path log, int managementPort) {
        /** Its Prometheus metrics (text format). */
        public String metricsUrl() {
            return "http://127.0.0.1:" + managementPort + "/q/metrics";
        }
    }

    /**
     * JVM options of each service process: a serial collector and a bounded heap keep a stage's resident memory near
     * its model's size (a stage allocates little that lives; G1 would grow the heap towards -Xmx first).
     * Override with the environment variable SD_JAVA_OPTS.
     */
    static final List<String> JVM_OPTIONS = List.of(System.getenv().getOrDefault("SD_JAVA_OPTS",
            "-XX:+UseSerialGC -Xms32m -Xmx512m").trim().split("\\s+"));

    private final List<Service> services = new ArrayList<>();
    private final Service orchestrator;
    private int httpPort; // the orchestrator's HTTP API and web page
    private final Optional<Tls> tls; // how this class's health checks reach the processes (their CA, a client cert)

    /** How many processes of each stage. */
    public record Replicas(int textEncoders, int denoisers, int vaes) {
    }

    private LocalCluster(Path root, Path model, Replicas replicas, Path logs, Map<String, String> orchestratorEnv,
                         Map<String, String> stageEnv, Optional<Tls> tls) throws IOException {
        this.tls = tls;
        Files.createDirectories(logs);
        String m = model.toAbsolutePath().toString();
        List<Service> text = new ArrayList<>();
        List<Service> den = new ArrayList<>();
        List<Service> vae = new ArrayList<>();
        for (int i = 0; i < replicas.textEncoders(); i++) {
            text.add(start(root, logs, "text-encoder-svc", "SD_TEXT_ENCODER", m, stageEnv));
        }
        for (int i = 0; i < replicas.denoisers(); i++) {
            den.add(start(root, logs, "denoiser-svc", "SD_DENOISER", m, stageEnv));
        }
        for (int i = 0; i < replicas.vaes(); i++) {
            vae.add(start(root, logs, "vae-svc", "SD_VAE", m, stageEnv));
        }
        for (Service s : services) { // the stages first: the orchestrator serves only once they do
            awaitServing(s);
        }
        Map<String, String> env = new HashMap<>(orchestratorEnv);
        env.put("SD_ORCHESTRATOR_EMBEDDED", "false");
        env.put("SD_ORCHESTRATOR_TEXT_ENCODER", addresses(text));
        env.put("SD_ORCHESTRATOR_DENOISER", addresses(den));
        env.put("SD_ORCHESTRATOR_VAE", addresses(vae));
        orchestrator = start(root, logs, "orchestrator", "SD_ORCHESTRATOR", m, env);
        awaitServing(orchestrator);
    }

    /** Only the orchestrator, with the three stages in its process (orchestrator-embedded). */
    private LocalCluster(Path root, Path model, Path logs, Map<String, String> env) throws IOException {
        this.tls = Optional.empty();
        Files.createDirectories(logs);
        orchestrator = start(root, logs, "orchestrator-embedded", "SD_ORCHESTRATOR", model.toAbsolutePath().toString(),
                env);
        awaitServing(orchestrator);
    }

    /** The packaged orchestrator-embedded application alone: one process serving gRPC, HTTP and the web page. */
    public static LocalCluster startEmbedded(Path root, Path model, Path logs, Map<String, String> env) {
        try {
            return new LocalCluster(root, model, logs, env);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String addresses(List<Service> replicas) {
        return replicas.stream().map(d -> "localhost:" + d.port()).collect(Collectors.joining(","));
    }

    /**
     * Starts the processes and waits until each reports SERVING on grpc.health.v1.
     *
     * @param root the repository root (where the modules' target/ folders are)
     */
    public static LocalCluster start(Path root, Path model, int denoisers, Path logs,
                                     Map<String, String> orchestratorEnv) {
        return start(root, model, denoisers, logs, orchestratorEnv, Map.of());
    }

    /** With {@code stageEnv} added to each stage process's environment (e.g. SD_DENOISER_SPIN_WAIT). */
    public static LocalCluster start(Path root, Path model, int denoisers, Path logs,
                                     Map<String, String> orchestratorEnv, Map<String, String> stageEnv) {
        return start(root, model, new Replicas(1, denoisers, 1), logs, orchestratorEnv, stageEnv);
    }

    /** With as many processes of each stage as {@code replicas} says. */
    public static LocalCluster start(Path root, Path model, Replicas replicas, Path logs,
                                     Map<String, String> orchestratorEnv, Map<String, String> stageEnv) {
        return start(root, model, replicas, logs, orchestratorEnv, stageEnv, Optional.empty());
    }

    /** With TLS on the processes' gRPC ports (set in the environments): {@code tls} is how to check their health. */
    public static LocalCluster start(Path root, Path model, Replicas replicas, Path logs,
                                     Map<String, String> orchestratorEnv, Map<String, String> stageEnv,
                                     Optional<Tls> tls) {
        try {
            return new LocalCluster(root, model, replicas, logs, orchestratorEnv, stageEnv, tls);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Service start(Path root, Path logs, String module, String prefix, String model, Map<String, String> env)
            throws IOException {
        Path jar = root.resolve(module).resolve("target/quarkus-app/quarkus-run.jar");
        if (!Files.isRegularFile(jar)) {
            throw new IllegalStateException("not packaged: " + jar + " (run ./mvnw -DskipTests install)");
        }
        int port = freePort();
        Path log = logs.resolve(module + "-" + UUID.randomUUID().toString().substring(0, 8) + ".log");
        List<String> cmd = new ArrayList<>(List.of("java"));
        cmd.addAll(JVM_OPTIONS);
        cmd.addAll(List.of("-jar", jar.toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        int management = freePort();
        pb.environment().put(prefix + "_PORT", String.valueOf(port));
        pb.environment().put(prefix + "_MANAGEMENT_PORT", String.valueOf(management));
        pb.environment().put(prefix + "_MODEL_DIR", model);
        if (prefix.equals("SD_ORCHESTRATOR")) {
            httpPort = freePort();
            pb.environment().put("SD_ORCHESTRATOR_HTTP_PORT", String.valueOf(httpPort));
        }
        pb.environment().putAll(env);
        Service s = new Service(module, port, pb.start(), log, management);
        services.add(s);
        return s;
    }

    private static final java.util.Set<Integer> HANDED_OUT = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * A port that is free now, below Linux's ephemeral range (32768-60999): a process binds its ports seconds after
     * it is given them (after loading its model), and a port of the ephemeral range can meanwhile become the local
     * end of some outgoing connection (seen once: "Address already in use" on a management port). Never the same
     * port twice in this JVM.
     */
    public static int freePort() throws IOException {
        java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
        for (int attempt = 0; attempt < 200; attempt++) {
            int port = random.nextInt(20000, 32000);
            if (HANDED_OUT.contains(port)) {
                continue;
            }
            try (ServerSocket s = new ServerSocket()) {
                s.bind(new java.net.InetSocketAddress("127.0.0.1", port));
            } catch (IOException taken) {
                continue;
            }
            if (HANDED_OUT.add(port)) {
                return port;
            }
        }
        throw new IOException("no free port found in [20000, 32000)");
    }

    private void awaitServing(Service s) {
        ManagedChannel ch = channel(s);
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (System.nanoTime() < deadline) {
                if (!s.process().isAlive()) {
                    throw new IllegalStateException(s.module() + " exited; see " + s.log());
                }
                try {
                    HealthCheckResponse r = HealthGrpc.newBlockingStub(ch).withDeadlineAfter(2, TimeUnit.SECONDS)
                            .check(HealthCheckRequest.getDefaultInstance());
                    if (r.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
                        return;
                    }
                } catch (StatusRuntimeException e) {
                    // not up yet
                }
                Thread.sleep(200);
            }
            throw new IllegalStateException(s.module() + " on port " + s.port() + " never reported SERVING; see "
                    + s.log());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            ch.shutdownNow();
        }
    }

    /** A channel to one of its processes, with TLS when the cluster has it. */
    public ManagedChannel channel(Service s) {
        NettyChannelBuilder b = NettyChannelBuilder.forAddress("localhost", s.port()).maxInboundMessageSize(64 << 20);
        if (tls.isPresent()) {
            b.sslContext(tls.get().client());
        } else {
            b.usePlaintext();
        }
        return b.build();
    }

    public List<Service> services() {
        return List.copyOf(services);
    }

    public Service orchestrator() {
        return orchestrator;
    }

    /** The orchestrator's HTTP port (the JSON/SSE API under /v1, the web page at /). */
    public int httpPort() {
        return httpPort;
    }

    /** Logs of the services of {@code module}, in start order. */
    public List<Path> logs(String module) {
        return services.stream().filter(s -> s.module().equals(module)).map(Service::log).toList();
    }

    /** SIGTERM to every process (Quarkus shuts down cleanly), then a forced kill after 15 s. */
    @Override
    public void close() {
        services.forEach(s -> s.process().destroy());
        for (Service s : services) {
            try {
                if (!s.process().waitFor(15, TimeUnit.SECONDS)) {
                    s.process().destroyForcibly();
                }
            } catch (InterruptedException e) {
                s.process().destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }
}
