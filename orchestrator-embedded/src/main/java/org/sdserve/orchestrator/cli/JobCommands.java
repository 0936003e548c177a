package org.sdserve.orchestrator.cli;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.sdserve.proto.v1.CancelRequest;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.JobInfo;
import org.sdserve.proto.v1.ListJobsRequest;
import org.sdserve.proto.v1.ListJobsResponse;
import org.sdserve.proto.v1.WatchRequest;

/** {@code sd watch | cancel | jobs | health}: the job RPCs and the health check of a running orchestrator. */
final class JobCommands {
    static final Set<String> NAMES = Set.of("watch", "cancel", "jobs", "health");
    static final String USAGE = """
                   sd watch JOB_ID --target HOST:PORT [-o FILE] [--after SEQ]
                                          follow a job (again, after a dropped call) and write its images
                   sd cancel JOB_ID --target HOST:PORT
                   sd jobs --target HOST:PORT [--limit N]
                                          running, waiting and recently finished jobs
                   sd health --target HOST:PORT [--wait SECONDS]
                                          exit 0 once the orchestrator says SERVING (every stage has a replica)
                   sd serve               run the embedded stack as a server: gRPC on localhost:50050, the web
                                          page and the HTTP API on http://localhost:8080/
            """;
    private static final int MAX_MESSAGE = 64 << 20;
    private final SdCli cli;
    private final PrintStream err;

    JobCommands(SdCli cli, PrintStream err) {
        this.cli = cli;
        this.err = err;
    }

    int run(String[] args) {
        String command = args[0];
        boolean needsId = command.equals("watch") || command.equals("cancel");
        String jobId = null;
        String target = null;
        String output = "out.png";
        long after = 0;
        int limit = 0;
        long waitSeconds = 0;
        try {
            int i = 1;
            if (needsId) {
                if (args.length < 2 || args[1].startsWith("-")) {
                    throw new IllegalArgumentException(command + " needs a job id (the one Accepted printed)");
                }
                jobId = args[1];
                i = 2;
            }
            for (; i < args.length; i++) {
                switch (args[i]) {
                    case "--target" -> target = args[++i];
                    case "-o", "--output" -> output = args[++i];
                    case "--after" -> after = Long.parseLong(args[++i]);
                    case "--limit" -> limit = Integer.parseInt(args[++i]);
                    case "--wait" -> waitSeconds = Long.parseLong(args[++i]);
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
            if (target == null) {
                throw new IllegalArgumentException(command + " needs --target HOST:PORT (a running orchestrator)");
            }
        } catch (ArrayIndexOutOfBoundsException | IllegalArgumentException e) {
            err.println("sd: " + (e instanceof ArrayIndexOutOfBoundsException ? "an option lacks its value"
                    : e.getMessage()));
            err.print(USAGE);
            return 2;
        }
        ManagedChannel channel = NettyChannelBuilder.forTarget(target).usePlaintext()
                .maxInboundMessageSize(MAX_MESSAGE).build();
        try {
            DiffusionGrpc.DiffusionBlockingStub stub = DiffusionGrpc.newBlockingStub(channel);
            switch (command) {
                case "watch" -> {
                    return cli.follow(stub.withDeadlineAfter(600, TimeUnit.SECONDS).watch(WatchRequest.newBuilder()
                            .setJobId(jobId).setAfterSeq(after).build()), output);
                }
                case "cancel" -> {
                    err.println("sd: job " + jobId + " was " + stub.withDeadlineAfter(10, TimeUnit.SECONDS)
                            .cancel(CancelRequest.newBuilder().setJobId(jobId).build()).getState());
                    return 0;
                }
                case "jobs" -> {
                    ListJobsResponse list = stub.withDeadlineAfter(10, TimeUnit.SECONDS).listJobs(ListJobsRequest
                            .newBuilder().setLimit(limit).build());
                    System.out.printf(Locale.ROOT, "%d running, %d waiting, %d finished%n", list.getRunning(),
                            list.getWaiting(), list.getFinished());
                    for (JobInfo j : list.getJobsList()) {
                        System.out.printf(Locale.ROOT, "%s  %-20s %-22s %s %d/%d  %d ms old, %d watching%n",
                                j.getJobId(), j.getState(), j.getPriority(), j.getStage(), j.getStep(),
                                j.getTotalSteps(), j.getAgeMs(), j.getWatchers());
                    }
                    return 0;
                }
                default -> {
                    return health(channel, waitSeconds);
                }
            }
        } catch (StatusRuntimeException e) {
            err.println();
            err.println("sd: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
            return 1;
        } catch (IOException e) {
            err.println("sd: " + e.getMessage());
            return 1;
        } finally {
            channel.shutdownNow();
        }
    }

    /** grpc.health.v1 Check of the whole server, retried each half second for up to {@code waitSeconds}. */
    private int health(ManagedChannel channel, long waitSeconds) {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(waitSeconds);
        String last;
        while (true) {
            try {
                ServingStatus s = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.SECONDS)
                        .check(HealthCheckRequest.getDefaultInstance()).getStatus();
                if (s == ServingStatus.SERVING) {
                    err.println("sd: SERVING");
                    return 0;
                }
                last = s.toString();
            } catch (StatusRuntimeException e) {
                last = e.getStatus().getCode() + (e.getStatus().getDescription() == null ? ""
                        : ": " + e.getStatus().getDescription());
            }
            if (System.nanoTime() >= until) {
                err.println("sd: not serving: " + last);
                return 1;
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return 1;
            }
        }
    }
}
