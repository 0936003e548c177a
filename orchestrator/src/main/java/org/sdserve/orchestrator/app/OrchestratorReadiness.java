package org.sdserve.orchestrator.app;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;
import org.sdserve.common.metrics.ReadinessCheck;

/**
 * /q/health/ready: ready while the gRPC health says SERVING. (Its own bean: @Readiness is a qualifier, and the
 * HTTP adapter injects OrchestratorServer by its default one.)
 */
@Readiness
@ApplicationScoped
public class OrchestratorReadiness implements HealthCheck {
    @Inject
    OrchestratorServer server;

    @Override
    public HealthCheckResponse call() {
        return ReadinessCheck.of("orchestrator", server.notServingReason());
    }
}
