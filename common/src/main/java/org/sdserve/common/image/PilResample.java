package org.sdserve.common.image;

/**
 * Pillow's resampling of a float32 image ({@code Image.resize} in mode "F"): separable convolution, horizontal pass
 * first, with the filter stretched by the downscaling factor (antialiased, unlike Java2D's bicubic), coefficients in
 * double, each pass's result stored as float32. clean-fid resizes each channel this way, bicubic, before Inception
 * ("the resize that FID is sensitive to", Parmar et al. 2022); checked against Pillow by PilResampleTest
 * (tools/goldens/pil_resize.py).
 */
public final class PilResample {
    private PilResample() {
    }

    /** Pillow's filters: their support (in input pixels at scale 1) and kernel. */
    public enum Filter {
        /** Keys' cubic convolution with a = -0.5 (Image.BICUBIC). */
        BICUBIC(2.0) {
            @Override
            double weight(double x) {
                double a = -0.5;
                x = Math.abs(x);
                if (x < 1) {
                    return ((a + 2) * x - (a + 3)) * x * x + 1;
                }
                if (x < 2) {
                    return (((x - 5) * x + 8) * x - 4) * a;
                }
                return 0;
            }
        },
        /** sinc(x) sinc(x / 3) for |x| < 3 (Image.LANCZOS). */
        LANCZOS(3.0) {
            @Override
            double weight(double x) {
                if (x > -3 && x < 3) {
                    return sinc(x) * sinc(x / 3);
                }
                return 0;
            }

            private static double sinc(double x) {
                if (x == 0) {
                    return 1;
                }
                x *= Math.PI;
                return Math.sin(x) / x;
            }
        };

        private final double support;

        Filter(double support) {
            this.support = support;
        }

        abstract double weight(double x);
    }

    /**
     * A {@code width x height} plane (row-major) resized to {@code outWidth x outHeight}, as Pillow resizes a mode
     * "F" image with {@code filter}.
     */
    public static float[] resize(float[] plane, int width, int height, int outWidth, int outHeight, Filter filter) {
        if (plane.length != width * height || outWidth < 1 || outHeight < 1) {
            throw new IllegalArgumentException("a " + width + "x" + height + " plane of " + plane.length
                    + " values cannot be resized to " + outWidth + "x" + outHeight);
        }
        float[] rows = outWidth == width ? plane : horizontal(plane, width, height, outWidth, filter);
        return outHeight == height ? rows : vertical(rows, outWidth, height, outHeight, filter);
    }

    /** One output position's input window and normalized weights (Pillow's precompute_coeffs). */
    private record Window(int first, double[] weights) {
    }

    private static Window[] windows(int inSize, int outSize, Filter filter) {
        double scale = (double) inSize / outSize;
        double filterScale = Math.max(scale, 1.0);
        double support = filter.support * filterScale;
        Window[] out = new Window[outSize];
        for (int o = 0; o < outSize; o++) {
            double center = (o + 0.5) * scale;
            int first = Math.max((int) (center - support + 0.5), 0);
            int last = Math.min((int) (center + support + 0.5), inSize);
            double[] k = new double[last - first];
            double sum = 0;
            for (int i = 0; i < k.length; i++) {
                k[i] = filter.weight((i + first - center + 0.5) / filterScale);
                sum += k[i];
            }
            if (sum != 0) {
                for (int i = 0; i < k.length; i++) {
                    k[i] /= sum;
                }
            }
            out[o] = new Window(first, k);
        }
        return out;
    }

    private static float[] horizontal(float[] in, int width, int height, int outWidth, Filter filter) {
        Window[] w = windows(width, outWidth, filter);
        float[] out = new float[outWidth * height];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < outWidth; x++) {
                double s = 0;
                double[] k = w[x].weights();
                for (int i = 0; i < k.length; i++) {
                    s += in[y * width + w[x].first() + i] * k[i];
                }
                out[y * outWidth + x] = (float) s;
            }
        }
        return out;
    }

    private static float[] vertical(float[] in, int width, int height, int outHeight, Filter filter) {
        Window[] w = windows(height, outHeight, filter);
        float[] out = new float[width * outHeight];
        for (int y = 0; y < outHeight; y++) {
            double[] k = w[y].weights();
            for (int x = 0; x < width; x++) {
                double s = 0;
                for (int i = 0; i < k.length; i++) {
                    s += in[(w[y].first() + i) * width + x] * k[i];
                }
                out[y * width + x] = (float) s;
            }
        }
        return out;
    }
}
