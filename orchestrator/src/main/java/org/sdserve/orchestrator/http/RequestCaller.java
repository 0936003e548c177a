package org.sdserve.orchestrator.http;

import jakarta.enterprise.context.RequestScoped;
import org.sdserve.orchestrator.core.Caller;

/** Who makes the current HTTP request, as HttpAuth's filter found it (ANONYMOUS when the API takes no tokens). */
@RequestScoped
public class RequestCaller {
    private Caller caller = Caller.ANONYMOUS;

    Caller get() {
        return caller;
    }

    void set(Caller c) {
        caller = c;
    }
}
