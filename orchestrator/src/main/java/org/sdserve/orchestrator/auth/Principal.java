package org.sdserve.orchestrator.auth;

import io.grpc.Status;
import java.util.Set;
import org.sdserve.orchestrator.core.Caller;

/**
 * A token's holder: its name (in logs and quotas, never the token), its rights, how many jobs it may have waiting or
 * running at once, and how many it may submit per second (a token bucket of that rate and burst; 0 = no limit).
 */
public final class Principal {
    private final String name;
    private final Set<Right> rights;
    private final int maxJobs;
    private final double ratePerSecond;
    private double allowance; // guarded by this: jobs it may submit now
    private long checkedAt = System.nanoTime(); // guarded by this

    Principal(String name, Set<Right> rights, int maxJobs, double ratePerSecond) {
        this.name = name;
        this.rights = Set.copyOf(rights);
        this.maxJobs = maxJobs;
        this.ratePerSecond = ratePerSecond;
        this.allowance = Math.max(1, ratePerSecond);
    }

    public String name() {
        return name;
    }

    public Caller caller() {
        return new Caller(name, maxJobs, rights.contains(Right.OTHERS));
    }

    /** @throws io.grpc.StatusRuntimeException PERMISSION_DENIED without the right */
    public void require(Right right) {
        if (!rights.contains(right)) {
            throw Status.PERMISSION_DENIED.withDescription("the token \"" + name + "\" may not " + right.word()
                    + " (its rights: " + String.join(", ", rights.stream().map(Right::word).sorted().toList()) + ")")
                    .asRuntimeException();
        }
    }

    /** Takes one submission from its rate. @throws io.grpc.StatusRuntimeException RESOURCE_EXHAUSTED past it */
    public void admitSubmission() {
        if (ratePerSecond <= 0) {
            return;
        }
        synchronized (this) {
            long now = System.nanoTime();
            allowance = Math.min(Math.max(1, ratePerSecond), allowance + (now - checkedAt) / 1e9 * ratePerSecond);
            checkedAt = now;
            if (allowance < 1) {
                throw Status.RESOURCE_EXHAUSTED.withDescription(String.format(java.util.Locale.ROOT,
                        "\"%s\" submits at most %s jobs a second; retry in %.1f s", name, fmt(ratePerSecond),
                        (1 - allowance) / ratePerSecond)).asRuntimeException();
            }
            allowance -= 1;
        }
    }

    private static String fmt(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }
}
