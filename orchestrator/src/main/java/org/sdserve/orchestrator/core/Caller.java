package org.sdserve.orchestrator.core;

/**
 * Who calls, as far as the engine cares: a name its jobs are counted under, how many of them may be waiting or
 * running at once (0 = no quota), and whether it may see and act on other callers' jobs (else another caller's job
 * is NOT_FOUND to it, as an unknown id would be). The transports' authentication says who (a bearer token).
 */
public record Caller(String name, int maxJobs, boolean seesAll) {
    /** Every caller when the API takes no tokens: no quota, every job. */
    public static final Caller ANONYMOUS = new Caller("", 0, true);

    boolean sees(Job job) {
        return seesAll || job.caller().equals(name);
    }
}
