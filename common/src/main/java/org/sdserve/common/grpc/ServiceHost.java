package org.sdserve.common.grpc;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.micrometer.core.instrument.Metrics;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.sdserve.common.metrics.GrpcServerMetrics;
import org.sdserve.common.trace.Tracing;

/**
 * Serves a stage's gRPC services, plus the standard {@code grpc.health.v1.Health} service, on a TCP port or
 * an in-process name; on TCP also server reflection ({@code grpc.reflection.v1}: grpcurl and other tools list and
 * call the services without the .proto files). Health says SERVING only once {@link #serving()} is called, i.e. after the models are
 * loaded; NOT_SERVING while draining at shutdown.
 */
public final class ServiceHost implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(ServiceHost.class.getName());
    private final Server server;
    private final HealthStatusManager health;
    private final List<String> serviceNames;
    private final String where;

    private ServiceHost(Server server, HealthStatusManager health, List<String> names, String where) {
        this.server = server;
        this.health = health;
        this.serviceNames = names;
        this.where = where;
    }

    /** Connections live 5 minutes. */
    public static final Duration DEFAULT_MAX_CONNECTION_AGE = Duration.ofMinutes(5);

    /** Listens on {@code host:port} (port 0 = any free port). */
    public static ServiceHost tcp(String host, int port, int maxInboundBytes, List<BindableService> services) {
        return tcp(host, port, maxInboundBytes, DEFAULT_MAX_CONNECTION_AGE, services);
    }

    /**
     * @param maxConnectionAge when a connection ends (GOAWAY, its calls finish first), so that clients resolving a
     *     dns:/// name re-resolve it and spread over replicas added since
     */
    public static ServiceHost tcp(String host, int port, int maxInboundBytes, Duration maxConnectionAge,
                                  List<BindableService> services) {
        return tcp(host, port, maxInboundBytes, maxConnectionAge, Optional.empty(), services);
    }

    /** With TLS (then no plaintext call is taken; with the Tls's CA, client certificates are required). */
    public static ServiceHost tcp(String host, int port, int maxInboundBytes, Duration maxConnectionAge,
                                  Optional<Tls> tls, List<BindableService> services) {
        if (maxConnectionAge.isNegative() || maxConnectionAge.isZero()) {
            throw new IllegalArgumentException("max-connection-age must be positive, got " + maxConnectionAge);
        }
        HealthStatusManager health = new HealthStatusManager();
        NettyServerBuilder b = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
                .maxInboundMessageSize(maxInboundBytes)
                .permitKeepAliveTime(10, TimeUnit.SECONDS)
                .maxConnectionAge(maxConnectionAge.toMillis(), TimeUnit.MILLISECONDS)
                .addService(UnparseableRequests.guard(health.getHealthService().bindService()))
                .addService(UnparseableRequests.guard(ProtoReflectionServiceV1.newInstance().bindService()));
        tls.ifPresent(t -> b.sslContext(t.server()));
        services.forEach(s -> b.addService(measured(s)));
        return start(b.build(), health, services, host + ":" + port);
    }

    /** Serves on the in-process transport under {@code name}: real gRPC, no sockets. */
    public static ServiceHost inProcess(String name, int maxInboundBytes, List<BindableService> services) {
        HealthStatusManager health = new HealthStatusManager();
        InProcessServerBuilder b = InProcessServerBuilder.forName(name).maxInboundMessageSize(maxInboundBytes)
                .addService(UnparseableRequests.guard(health.getHealthService().bindService()));
        services.forEach(s -> b.addService(measured(s)));
        return start(b.build(), health, services, "in-process:" + name);
    }

    /**
     * A service with its calls traced (Tracing; outermost, so that the span is current in what follows), counted
     * (GrpcServerMetrics), their job id in their Context (JobIds), and their unparseable requests answered.
     */
    private static ServerServiceDefinition measured(BindableService s) {
        return ServerInterceptors.intercept(UnparseableRequests.guard(s.bindService()), JobIds.server(),
                new GrpcServerMetrics(Metrics.globalRegistry), Tracing.server());
    }

    private static ServiceHost start(Server server, HealthStatusManager health, List<BindableService> services,
                                     String where) {
        List<String> names = services.stream().map(BindableService::bindService)
                .map(ServerServiceDefinition::getServiceDescriptor).map(d -> d.getName()).toList();
        health.setStatus("", ServingStatus.NOT_SERVING);
        names.forEach(n -> health.setStatus(n, ServingStatus.NOT_SERVING));
        try {
            server.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot listen on " + where + ": " + e.getMessage(), e);
        }
        return new ServiceHost(server, health, names, where);
    }

    /** Marks the server and each service SERVING. Call once the models are loaded and checked. */
    public synchronized void serving() {
        health.setStatus("", ServingStatus.SERVING);
        serviceNames.forEach(n -> health.setStatus(n, ServingStatus.SERVING));
        if (!"".equals(notServingBecause)) {
            LOG.log(System.Logger.Level.INFO, "serving {0} on {1}", serviceNames, where());
        }
        notServingBecause = "";
    }

    /** Marks the server and each service NOT_SERVING (what it depends on is not available), until serving(). */
    public synchronized void notServing(String why) {
        health.setStatus("", ServingStatus.NOT_SERVING);
        serviceNames.forEach(n -> health.setStatus(n, ServingStatus.NOT_SERVING));
        if (!why.equals(notServingBecause)) {
            LOG.log(System.Logger.Level.WARNING, "NOT_SERVING {0} on {1}: {2}", serviceNames, where(), why);
        }
        notServingBecause = why;
    }

    /** "" while serving; null before the first serving() or notServing(); else the last reason given. */
    private String notServingBecause;

    /** null while SERVING, else why not (readiness over HTTP reads it). */
    public synchronized String notServingReason() {
        if ("".equals(notServingBecause)) {
            return null;
        }
        return notServingBecause == null ? "starting" : notServingBecause;
    }

    /** The bound TCP port (after start), or -1 in-process. */
    public int port() {
        return server.getPort();
    }

    /** "host:port" for TCP (with the bound port when 0 was asked for), "in-process:name" otherwise. */
    public String where() {
        return where.startsWith("in-process:") ? where : where.substring(0, where.lastIndexOf(':') + 1)
                + server.getPort();
    }

    /**
     * Stops at once: calls in flight end with UNAVAILABLE, as clients see it when a process dies (close() lets
     * them finish first).
     */
    public void closeNow() {
        synchronized (this) {
            notServingBecause = "shut down";
        }
        health.enterTerminalState();
        server.shutdownNow();
    }

    @Override
    public void close() {
        synchronized (this) {
            notServingBecause = "shutting down";
        }
        health.enterTerminalState();
        server.shutdown();
        try {
            if (!server.awaitTermination(10, TimeUnit.SECONDS)) {
                server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            server.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
