package org.sdserve.orchestrator.auth;

import java.util.Locale;

/** What a token may do with the public API (Diffusion's methods, and the HTTP routes that mirror them). */
public enum Right {
    GENERATE, WATCH, CANCEL, LIST;

    String word() {
        return name().toLowerCase(Locale.ROOT);
    }
}
