package org.sdserve.common.metrics;

import org.eclipse.microprofile.health.HealthCheckResponse;

/** A process's readiness over HTTP (/q/health/ready) as its gRPC health says it: ready while SERVING. */
public final class ReadinessCheck {
    private ReadinessCheck() {
    }

    /** @param notServingReason null while SERVING, else why not ("starting", "draining: ...", a missing stage) */
    public static HealthCheckResponse of(String name, String notServingReason) {
        return notServingReason == null ? HealthCheckResponse.up(name)
                : HealthCheckResponse.named(name).down().withData("reason", notServingReason).build();
    }
}
