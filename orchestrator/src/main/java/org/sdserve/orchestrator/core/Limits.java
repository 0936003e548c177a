package org.sdserve.orchestrator.core;

/**
 * What one request may ask for.
 *
 * @param maxSide largest width or height in pixels
 * @param maxSteps most denoising steps
 * @param maxImages most images per request
 * @param maxPixels most pixels per request, all images together (bounds the memory a request can take)
 */
public record Limits(int maxSide, int maxSteps, int maxImages, long maxPixels) {
    public static final Limits DEFAULT = new Limits(2048, 200, 8, 2048L * 2048);
}
