package org.sdserve.orchestrator.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.List;
import org.junit.jupiter.api.Test;

class TokensTest {
    private static final String WEB = "web-0123456789abcdef";
    private static final String BATCH = "batch-0123456789abcdef";

    private static Tokens tokens() {
        return Tokens.parse(List.of("# name token rights quotas", "", "web " + WEB + " generate,watch jobs=2 rate=5",
                "batch sha256:" + Tokens.sha256(BATCH) + " all"), "tokens");
    }

    private static Status.Code code(Runnable r) {
        return assertThrows(StatusRuntimeException.class, r::run).getStatus().getCode();
    }

    @Test
    void tokensAuthenticateTheirHolderByDigest() {
        Tokens t = tokens();
        assertEquals(2, t.size());
        assertEquals("web", t.authenticate("Bearer " + WEB).name());
        assertEquals("web", t.authenticate("bearer  " + WEB + " ").name(), "the scheme is case-insensitive");
        assertEquals("batch", t.authenticate("Bearer " + BATCH).name(), "a sha256: line takes the token itself");
        assertEquals(2, t.authenticate("Bearer " + WEB).caller().maxJobs());
    }

    @Test
    void missingUnknownAndMalformedTokensAreUnauthenticatedAndRightsAreChecked() {
        Tokens t = tokens();
        for (String a : new String[] {null, "", "Bearer nope-nope-nope-nope", "Basic abc", "Bearer"}) {
            assertEquals(Status.Code.UNAUTHENTICATED, code(() -> t.authenticate(a)), String.valueOf(a));
        }
        Principal web = t.authenticate("Bearer " + WEB);
        web.require(Right.WATCH);
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> web.require(Right.CANCEL));
        assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode());
        assertEquals("the token \"web\" may not cancel (its rights: generate, watch)", e.getStatus().getDescription());
        t.authenticate("Bearer " + BATCH).require(Right.CANCEL);
    }

    @Test
    void submissionsPastTheRateAreRefusedUntilItRefills() throws Exception {
        Principal web = tokens().authenticate("Bearer " + WEB); // rate=5: a burst of 5, then one per 200 ms
        for (int i = 0; i < 5; i++) {
            web.admitSubmission();
        }
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, web::admitSubmission);
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
        assertTrue(e.getStatus().getDescription().startsWith("\"web\" submits at most 5 jobs a second; retry in"));
        Thread.sleep(250);
        web.admitSubmission();
    }

    @Test
    void badFilesNameTheLineAndNeverQuoteAToken() {
        String[][] cases = {
            {"web short generate", "tokens line 1: the token of web is shorter than 16 characters"},
            {"web " + WEB + " generate,fly",
                "tokens line 1: unknown right \"fly\" (generate, watch, cancel, list, others, all)"},
            {"web " + WEB, "tokens line 1: expected NAME TOKEN RIGHTS [jobs=N] [rate=R]"},
            {"web " + WEB + " all jobs=x", "tokens line 1: expected jobs=N or rate=R, got jobs=x"},
            {"web sha256:abc all", "tokens line 1: sha256: must be followed by 64 hex digits"},
            {"# only a comment", "tokens holds no token"},
        };
        for (String[] c : cases) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Tokens.parse(List.of(c[0]), "tokens"));
            assertEquals(c[1], e.getMessage());
        }
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> Tokens.parse(
                List.of("a " + WEB + " all", "b " + WEB + " all"), "tokens"));
        assertEquals("tokens line 2: the same token as an earlier line", twice.getMessage());
    }
}
