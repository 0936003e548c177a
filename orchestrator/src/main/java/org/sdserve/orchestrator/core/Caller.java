package org.sdserve.orchestrator.core;

/**
 * Who submits a job, as far as the engine cares: a name its jobs are counted under, and how many of them may be
 * waiting or running at once (0 = no quota). The transports' authentication says who (a bearer token's name).
 */
public record Caller(String name, int maxJobs) {
    /** Every caller when the API takes no tokens: no quota. */
    public static final Caller ANONYMOUS = new Caller("", 0);
}
