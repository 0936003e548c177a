package org.sdserve.orchestrator.http;

import jakarta.ws.rs.core.Application;
import org.eclipse.microprofile.openapi.annotations.OpenAPIDefinition;
import org.eclipse.microprofile.openapi.annotations.enums.SecuritySchemeType;
import org.eclipse.microprofile.openapi.annotations.info.Info;
import org.eclipse.microprofile.openapi.annotations.security.SecurityRequirement;
import org.eclipse.microprofile.openapi.annotations.security.SecurityScheme;

/**
 * The OpenAPI document's frame: the bearer tokens of sd.orchestrator.tokens-file (when the server has one; without
 * it every caller is let in), also accepted as ?access_token= where a client cannot set headers.
 */
@OpenAPIDefinition(info = @Info(title = "sdserve HTTP API", version = "v1",
        description = "Text-to-image jobs over HTTP and Server-Sent Events, beside the gRPC API sd.v1.Diffusion"),
        security = @SecurityRequirement(name = "bearer"))
@SecurityScheme(securitySchemeName = "bearer", type = SecuritySchemeType.HTTP, scheme = "bearer",
        description = "a token of sd.orchestrator.tokens-file (or ?access_token=TOKEN)")
public class ApiDefinition extends Application {
}
