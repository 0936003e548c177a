package org.sdserve.common.grpc;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.sdserve.common.trace.Tracing;

/**
 * The channels to one stage: one per replica address, handed out round-robin per call, so that the replicas
 * of a stage share the work. With {@link #watchHealth} running, replicas whose grpc.health.v1 check fails or
 * says other than SERVING are skipped until they serve again (while none serves, calls go to all, and fail
 * with the transport's status). A replica whose call fails with UNAVAILABLE leaves the rotation at once, until
 * a health check says SERVING or {@link #EJECTION} passes. Owns and closes its channels.
 */
public final class StageChannels implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(StageChannels.class.getName());

    /**
     * One replica: its address, its channel (calls go through {@link #calls}, which names the stage and replica
     * in an UNAVAILABLE status), and what its last health check said (null before the first).
     */
    private static final class Replica {
        final String address;
        final ManagedChannel channel;
        final Channel calls;
        /** A resolver target: a pool whose own balancer skips its failed addresses; never ejected as a whole. */
        final boolean pool;
        volatile Boolean serving;
        volatile String why = "not checked yet";
        volatile boolean ejected; // a call failed with UNAVAILABLE: skipped until ejectedUntil or a SERVING check
        volatile long ejectedUntil; // nanoTime

        Replica(String stage, String address, ManagedChannel channel) {
            this.address = address;
            this.channel = channel;
            this.pool = address.contains(":///");
            this.calls = ClientInterceptors.intercept(channel, new NameOnUnavailable(stage + " replica " + address,
                    this::eject));
        }

        /** Out of the rotation at once (the next health check, or {@link #EJECTION}, brings it back). */
        void eject() {
            if (!pool) {
                ejectedUntil = System.nanoTime() + EJECTION.toNanos();
                ejected = true;
            }
        }

        boolean routable() {
            if (ejected && System.nanoTime() - ejectedUntil >= 0) {
                ejected = false;
            }
            return !Boolean.FALSE.equals(serving) && !ejected;
        }
    }

    /** How long a replica whose call failed with UNAVAILABLE is skipped when no health check says otherwise. */
    static final Duration EJECTION = Duration.ofSeconds(5);

    private final String stage;
    private final List<Replica> replicas;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicInteger nextLight = new AtomicInteger();

    private StageChannels(String stage, List<Replica> replicas) {
        if (replicas.isEmpty()) {
            throw new IllegalArgumentException(stage + ": at least one address is needed");
        }
        this.stage = stage;
        this.replicas = replicas;
    }

    /**
     * Plaintext channels, one per entry: a {@code host:port} address, or a name-resolver target such as
     * {@code dns:///denoiser-headless:50052}, whose channel is a pool of its own: grpc-java's DNS resolver gives
     * every address the name has, calls go round-robin over them and skip those whose grpc.health.v1 says other
     * than SERVING (client-side health checking, from the service config; grpc-services provides it).
     */
    public static StageChannels tcp(String stage, List<String> addresses, int maxInboundBytes) {
        return tcp(stage, addresses, maxInboundBytes, java.util.Optional.empty());
    }

    /** With TLS to every replica (the Tls's CA trusted; its certificate presented, for mutual TLS). */
    public static StageChannels tcp(String stage, List<String> addresses, int maxInboundBytes,
                                    java.util.Optional<Tls> tls) {
        return new StageChannels(stage, addresses.stream()
                .map(a -> new Replica(stage, a, channel(a, maxInboundBytes, tls)))
                .toList());
    }

    /** round_robin with grpc.health.v1 checks of the overall health (service ""), for resolver targets. */
    private static final java.util.Map<String, ?> POOL_CONFIG = java.util.Map.of(
            "loadBalancingConfig", List.of(java.util.Map.of("round_robin", java.util.Map.of())),
            "healthCheckConfig", java.util.Map.of("serviceName", ""));

    private static ManagedChannel channel(String target, int maxInboundBytes, java.util.Optional<Tls> tls) {
        NettyChannelBuilder b = NettyChannelBuilder.forTarget(target).maxInboundMessageSize(maxInboundBytes)
                .intercept(JobIds.client(), Tracing.client());
        if (tls.isPresent()) {
            b.sslContext(tls.get().client());
        } else {
            b.usePlaintext();
        }
        if (target.contains(":///")) {
            b.defaultServiceConfig(POOL_CONFIG);
        }
        return b.build();
    }

    public static StageChannels inProcess(String stage, String name, int maxInboundBytes) {
        return inProcess(stage, List.of(name), maxInboundBytes);
    }

    /** In-process replicas, one per server name (tests of balancing and failover without sockets). */
    public static StageChannels inProcess(String stage, List<String> names, int maxInboundBytes) {
        return new StageChannels(stage, names.stream().map(n -> new Replica(stage, "in-process:" + n,
                InProcessChannelBuilder.forName(n).maxInboundMessageSize(maxInboundBytes).intercept(JobIds.client(), Tracing.client())
                        .build())).toList());
    }

    /**
     * How many replicas a call may try before it gives up on UNAVAILABLE: each one once, at least twice (a pool
     * retried picks another of its addresses), at most 4.
     */
    public int attempts() {
        return Math.min(4, Math.max(2, replicas.size()));
    }

    public String stage() {
        return stage;
    }

    public int size() {
        return replicas.size();
    }

    /** The channel for the next unit of work. */
    public Channel next() {
        return pick(next);
    }

    /** The channel for the next light call (metadata), on its own rotation so that work stays evenly spread. */
    public Channel nextLight() {
        return pick(nextLight);
    }

    private Channel pick(AtomicInteger rotation) {
        List<Replica> up = replicas.stream().filter(Replica::routable).toList();
        List<Replica> from = up.isEmpty() ? replicas : up;
        return from.get(Math.floorMod(rotation.getAndIncrement(), from.size())).calls;
    }

    /** True when at least one replica's last health check said SERVING. */
    public boolean serving() {
        return replicas.stream().anyMatch(r -> Boolean.TRUE.equals(r.serving));
    }

    /** Each replica's address and last health state, e.g. {@code "localhost:50052 SERVING"}. */
    public String describe() {
        return replicas.stream().map(r -> r.address + " " + (Boolean.TRUE.equals(r.serving) ? "SERVING" : r.why))
                .collect(Collectors.joining(", "));
    }

    /**
     * Checks every replica's overall health ({@code grpc.health.v1.Health/Check} with service "") every
     * {@code period}, each check limited to {@code period} too; calls {@code onChange} after any replica changes
     * state. Runs until the scheduler stops or this closes.
     */
    public void watchHealth(ScheduledExecutorService scheduler, Duration period, Runnable onChange) {
        scheduler.scheduleWithFixedDelay(() -> replicas.forEach(r -> check(r, period, onChange)), 0,
                period.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void check(Replica r, Duration limit, Runnable onChange) {
        if (r.channel.isShutdown()) {
            return;
        }
        if (!Boolean.TRUE.equals(r.serving)) {
            r.channel.resetConnectBackoff(); // try a replica that is down now, not after gRPC's reconnect backoff
        }
        HealthGrpc.newStub(r.channel).withWaitForReady().withDeadlineAfter(limit.toMillis(), TimeUnit.MILLISECONDS)
                .check(HealthCheckRequest.getDefaultInstance(), new StreamObserver<>() {
                    @Override
                    public void onNext(HealthCheckResponse response) {
                        boolean serving = response.getStatus() == HealthCheckResponse.ServingStatus.SERVING;
                        update(r, serving, response.getStatus().name(), onChange);
                    }

                    @Override
                    public void onError(Throwable t) {
                        Status status = Status.fromThrowable(t);
                        String why = status.getCode() == Status.Code.DEADLINE_EXCEEDED // waited for a connection
                                ? "no answer within " + limit.toMillis() + " ms"
                                : status.getCode() + ": " + firstLine(status.getDescription());
                        update(r, false, why, onChange);
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
    }

    /** The first line of a status description, at most 100 characters (transport details run long). */
    private static String firstLine(String description) {
        String line = description == null ? "" : description.lines().findFirst().orElse("");
        return line.length() <= 100 ? line : line.substring(0, 100) + "...";
    }

    private void update(Replica r, boolean serving, String why, Runnable onChange) {
        if (serving) {
            r.ejected = false;
        }
        Boolean before = r.serving;
        r.why = why;
        r.serving = serving;
        if (before == null || before != serving) {
            LOG.log(serving ? System.Logger.Level.INFO : System.Logger.Level.WARNING, "{0} replica {1}: {2}",
                    stage, r.address, serving ? "SERVING" : "not serving (" + why + ")");
            onChange.run();
        }
    }

    /**
     * grpc-netty reports a write to a connection the peer has just closed as UNKNOWN "channel closed" (its
     * ClosedChannelException mapping), not UNAVAILABLE: it is the same event (the replica went away), so it is
     * treated as one, to be failed over and resumed (seen once when a VAE replica was killed mid-job).
     */
    static Status transportLost(Status status) {
        boolean closed = status.getCode() == Status.Code.UNKNOWN
                && (status.getCause() instanceof java.nio.channels.ClosedChannelException
                || "channel closed".equals(status.getDescription()));
        return closed ? Status.UNAVAILABLE.withDescription("the connection closed under the call (channel closed)")
                .withCause(status.getCause()) : status;
    }

    /** Prefixes the description of an UNAVAILABLE status with the stage and replica it came from. */
    private record NameOnUnavailable(String who, Runnable onUnavailable) implements ClientInterceptor {
        @Override
        public <Q, A> ClientCall<Q, A> interceptCall(MethodDescriptor<Q, A> method, CallOptions options, Channel next) {
            return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
                @Override
                public void start(Listener<A> listener, Metadata headers) {
                    super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
                        @Override
                        public void onClose(Status status, Metadata trailers) {
                            status = transportLost(status);
                            if (status.getCode() == Status.Code.UNAVAILABLE) {
                                onUnavailable.run();
                            }
                            super.onClose(status.getCode() == Status.Code.UNAVAILABLE ? status.withDescription(
                                    who + " is unavailable: " + status.getDescription()) : status, trailers);
                        }
                    }, headers);
                }
            };
        }
    }

    @Override
    public void close() {
        replicas.forEach(r -> r.channel.shutdown());
        for (Replica r : replicas) {
            try {
                if (!r.channel.awaitTermination(5, TimeUnit.SECONDS)) {
                    r.channel.shutdownNow();
                }
            } catch (InterruptedException e) {
                r.channel.shutdownNow();
                Thread.currentThread().interrupt();
            }
        }
    }
}
