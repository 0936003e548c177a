package org.sdserve.orchestrator.core;

/**
 * What one request may ask for.
 *
 * @param maxSide largest width or height in pixels
 * @param maxSteps most denoising steps
 * @param maxImages most images per request
 */
public record Limits(int maxSide, int maxSteps, int maxImages) {
    public static final Limits DEFAULT = new Limits(2048, 200, 8);
}
