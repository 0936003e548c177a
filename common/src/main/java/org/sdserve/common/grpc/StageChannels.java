package org.sdserve.common.grpc;

import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The channels to one stage: one per replica address, handed out round-robin per call, so that the replicas
 * of a stage share the work. Owns and closes its channels.
 */
public final class StageChannels implements AutoCloseable {
    private final String stage;
    private final List<ManagedChannel> channels;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicInteger nextLight = new AtomicInteger();

    private StageChannels(String stage, List<ManagedChannel> channels) {
        if (channels.isEmpty()) {
            throw new IllegalArgumentException(stage + ": at least one address is needed");
        }
        this.stage = stage;
        this.channels = channels;
    }

    /** Plaintext channels to {@code host:port} addresses. */
    public static StageChannels tcp(String stage, List<String> addresses, int maxInboundBytes) {
        return new StageChannels(stage, addresses.stream()
                .map(a -> (ManagedChannel) NettyChannelBuilder.forTarget(a).usePlaintext()
                        .maxInboundMessageSize(maxInboundBytes).build())
                .toList());
    }

    public static StageChannels inProcess(String stage, String name, int maxInboundBytes) {
        return new StageChannels(stage, List.of(InProcessChannelBuilder.forName(name)
                .maxInboundMessageSize(maxInboundBytes).build()));
    }

    public String stage() {
        return stage;
    }

    public int size() {
        return channels.size();
    }

    /** The channel for the next unit of work. */
    public Channel next() {
        return channels.get(Math.floorMod(next.getAndIncrement(), channels.size()));
    }

    /** The channel for the next light call (metadata), on its own rotation so that work stays evenly spread. */
    public Channel nextLight() {
        return channels.get(Math.floorMod(nextLight.getAndIncrement(), channels.size()));
    }

    @Override
    public void close() {
        channels.forEach(ManagedChannel::shutdown);
        for (ManagedChannel c : channels) {
            try {
                if (!c.awaitTermination(5, TimeUnit.SECONDS)) {
                    c.shutdownNow();
                }
            } catch (InterruptedException e) {
                c.shutdownNow();
                Thread.currentThread().interrupt();
            }
        }
    }
}
