package org.sdserve.common.image;

import java.awt.image.BufferedImage;
import java.awt.image.DataBufferByte;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import javax.imageio.ImageIO;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.tensor.FloatTensor;

/**
 * An 8-bit RGB image, row-major, 3 bytes a pixel, and its conversions: from a [-1,1] CHW float tensor
 * (as diffusers' VaeImageProcessor: (x / 2 + 0.5).clamp(0, 1) * 255, rounded), to and from PNG.
 */
public record RgbImage(int width, int height, byte[] rgb) {
    static {
        // ImageIO buffers in memory, not in temporary files: a file cache registers a JVM shutdown hook per stream,
        // which fails once shutdown has begun (a job finishing during a drain lost its PNG to it), and writes to disk
        // for images that are a few MB at most
        ImageIO.setUseCache(false);
    }

    public RgbImage {
        if (rgb.length != width * height * 3) {
            throw new IllegalArgumentException("RGB buffer of " + width + "x" + height + " needs "
                    + width * height * 3 + " bytes, got " + rgb.length);
        }
    }

    /** Item {@code index} of a [B,3,H,W] tensor with values in about [-1,1]. */
    public static RgbImage fromSignedUnit(FloatTensor t, int index) {
        int h = t.dim(2);
        int w = t.dim(3);
        int plane = h * w;
        float[] d = t.data();
        int base = index * 3 * plane;
        byte[] rgb = new byte[plane * 3];
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < plane; i++) {
                float v = (d[base + c * plane + i] / 2f + 0.5f) * 255f;
                int q = Math.round(Math.max(0f, Math.min(255f, v)));
                rgb[i * 3 + c] = (byte) q;
            }
        }
        return new RgbImage(w, h, rgb);
    }

    /**
     * Writes this image into item {@code index} of a [B,3,H,W] tensor as values in [-1,1], in float32 as diffusers'
     * VaeImageProcessor: 2 * (v / 255) - 1.
     */
    public void toSignedUnit(float[] out, int index) {
        int plane = width * height;
        int base = index * 3 * plane;
        for (int i = 0; i < plane; i++) {
            for (int c = 0; c < 3; c++) {
                out[base + c * plane + i] = 2f * ((rgb[i * 3 + c] & 0xff) / 255f) - 1f;
            }
        }
    }

    /** This image scaled to {@code w} x {@code h} with bicubic interpolation (Java 2D), or itself at that size. */
    public RgbImage resized(int w, int h) {
        if (w == width && h == height) {
            return this;
        }
        BufferedImage src = toBuffered();
        BufferedImage dst = new BufferedImage(w, h, BufferedImage.TYPE_3BYTE_BGR);
        java.awt.Graphics2D g = dst.createGraphics();
        try {
            g.setRenderingHint(java.awt.RenderingHints.KEY_INTERPOLATION,
                    java.awt.RenderingHints.VALUE_INTERPOLATION_BICUBIC);
            g.drawImage(src, 0, 0, w, h, null);
        } finally {
            g.dispose();
        }
        byte[] rgbOut = new byte[w * h * 3];
        swapRedBlue(((DataBufferByte) dst.getRaster().getDataBuffer()).getData(), rgbOut);
        return new RgbImage(w, h, rgbOut);
    }

    /** Channel {@code c} (0 red, 1 green, 2 blue) as a row-major plane of float values 0..255. */
    public float[] channel(int c) {
        if (c < 0 || c > 2) {
            throw new IllegalArgumentException("an RGB image has channels 0, 1 and 2, not " + c);
        }
        float[] out = new float[width * height];
        for (int i = 0; i < out.length; i++) {
            out[i] = rgb[i * 3 + c] & 0xff;
        }
        return out;
    }

    /** Luma as PIL's "L" conversion (ITU-R 601-2, fixed point): (19595 R + 38470 G + 7471 B + 2^15) >> 16. */
    public int luma(int x, int y) {
        return (19595 * red(x, y) + 38470 * green(x, y) + 7471 * blue(x, y) + 0x8000) >> 16;
    }

    /** An inpainting mask's rule (diffusers' mask processor: luma / 255, binarized at 0.5): repaint here. */
    public boolean masked(int x, int y) {
        return luma(x, y) / 255f >= 0.5f;
    }

    public int red(int x, int y) {
        return rgb[(y * width + x) * 3] & 0xff;
    }

    public int green(int x, int y) {
        return rgb[(y * width + x) * 3 + 1] & 0xff;
    }

    public int blue(int x, int y) {
        return rgb[(y * width + x) * 3 + 2] & 0xff;
    }

    /** This image in a BufferedImage of TYPE_3BYTE_BGR (its raster holds B, G, R per pixel). */
    private BufferedImage toBuffered() {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_3BYTE_BGR);
        swapRedBlue(rgb, ((DataBufferByte) img.getRaster().getDataBuffer()).getData());
        return img;
    }

    private static void swapRedBlue(byte[] from, byte[] to) {
        for (int i = 0; i < from.length; i += 3) {
            to[i] = from[i + 2];
            to[i + 1] = from[i + 1];
            to[i + 2] = from[i];
        }
    }

    public byte[] toPng() {
        BufferedImage img = toBuffered();
        ByteArrayOutputStream out = new ByteArrayOutputStream(width * height + 256);
        try {
            ImageIO.write(img, "png", out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** Decodes a PNG (or any format ImageIO reads) into RGB; alpha is dropped. */
    /** Largest side accepted by {@link #fromPng(byte[], String)}: twice the orchestrator's 2048 limit. */
    public static final int MAX_SIDE = 4096;

    public static RgbImage fromPng(byte[] png, String field) {
        return fromPng(png, field, MAX_SIDE);
    }

    /**
     * Decodes an image, after reading its declared size from the header alone: a small file declaring a huge image
     * (a 50 KB PNG of 20000 x 20000) is refused before any pixel is decoded.
     */
    public static RgbImage fromPng(byte[] png, String field, int maxSide) {
        BufferedImage img;
        try (javax.imageio.stream.ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(png))) {
            java.util.Iterator<javax.imageio.ImageReader> readers = ImageIO.getImageReaders(in);
            InvalidRequestException.require(readers.hasNext(), "%s: not a PNG or other readable image (%d bytes)",
                    field, png.length);
            javax.imageio.ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                int w = reader.getWidth(0);
                int h = reader.getHeight(0);
                InvalidRequestException.require(w >= 1 && h >= 1 && w <= maxSide && h <= maxSide,
                        "%s: images up to %d x %d are accepted, this one declares %d x %d", field, maxSide, maxSide,
                        w, h);
                img = reader.read(0);
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof InvalidRequestException ire) {
                throw ire;
            }
            String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            throw new InvalidRequestException(field + ": not a readable image: " + (why.length() <= 100 ? why
                    : why.substring(0, 100) + "..."));
        }
        int w = img.getWidth();
        int h = img.getHeight();
        byte[] rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int p = img.getRGB(x, y);
                int i = (y * w + x) * 3;
                rgb[i] = (byte) (p >> 16);
                rgb[i + 1] = (byte) (p >> 8);
                rgb[i + 2] = (byte) p;
            }
        }
        return new RgbImage(w, h, rgb);
    }
}
