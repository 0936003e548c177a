package org.sdserve.orchestrator.auth;

import java.util.Locale;

/**
 * What a token may do with the public API (Diffusion's methods, and the HTTP routes that mirror them). Watch,
 * cancel and list concern the token's own jobs; OTHERS extends them to every token's jobs (an operator's).
 */
public enum Right {
    GENERATE, WATCH, CANCEL, LIST, OTHERS;

    String word() {
        return name().toLowerCase(Locale.ROOT);
    }
}
