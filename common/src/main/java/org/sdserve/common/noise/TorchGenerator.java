package org.sdserve.common.noise;

/**
 * Reproduces torch's CPU generator for float32 normal noise:
 * {@code torch.randn(shape, generator=torch.Generator().manual_seed(seed))}.
 * Engine: 32-bit MT19937 seeded with the low 32 bits of the seed. Uniform float = (next() & 0xFFFFFF) * 2^-24.
 * Tensors of >= 16 elements: all uniforms first, then Box-Muller on each block of 16 (element j with j+8),
 * the last block redrawn if the size is not a multiple of 16 (aten/src/ATen/native/cpu/DistributionTemplates.h,
 * normal_fill). Smaller tensors use the scalar double path with its cached second value.
 * Two kernels, as torch has: {@link Kernel#AVX2} (what torch runs on x86 CPUs with AVX2, most users; bit-exact,
 * see {@link Avx2Math}) and {@link Kernel#DEFAULT} (torch's scalar kernel, {@code ATEN_CPU_CAPABILITY=default}:
 * glibc's logf and sincosf, bit-exact with glibc 2.36's FMA variants on x86-64, see {@link GlibcMath}).
 */
public final class TorchGenerator {
    /** Which of torch's CPU normal kernels to reproduce. */
    public enum Kernel {
        AVX2, DEFAULT
    }

    private static final int N = 624;
    private final int[] mt = new int[N];
    private int index;
    private final Kernel kernel;
    private double cachedNormal;
    private boolean hasCachedNormal;

    public TorchGenerator(long seed) {
        this(seed, Kernel.AVX2);
    }

    public TorchGenerator(long seed, Kernel kernel) {
        this.kernel = kernel;
        mt[0] = (int) seed;
        for (int i = 1; i < N; i++) {
            mt[i] = 1812433253 * (mt[i - 1] ^ (mt[i - 1] >>> 30)) + i;
        }
        index = N;
    }

    /** The next 32-bit output of MT19937, as an unsigned value in a long. */
    public long nextInt() {
        if (index >= N) {
            twist();
        }
        int y = mt[index++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        return y & 0xffffffffL;
    }

    private void twist() {
        for (int i = 0; i < N; i++) {
            int y = (mt[i] & 0x80000000) | (mt[(i + 1) % N] & 0x7fffffff);
            int v = mt[(i + 397) % N] ^ (y >>> 1);
            if ((y & 1) != 0) {
                v ^= 0x9908b0df;
            }
            mt[i] = v;
        }
        index = 0;
    }

    private float uniformFloat() {
        return (nextInt() & 0xFFFFFF) * 0x1p-24f;
    }

    private double uniformDouble() {
        long a = nextInt();
        long b = nextInt();
        return (((a << 32) | b) & ((1L << 53) - 1)) * 0x1p-53;
    }

    /** Fills {@code out} like torch.randn of a tensor with {@code out.length} elements (mean 0, std 1). */
    public void randn(float[] out) {
        int n = out.length;
        if (n >= 16) {
            for (int i = 0; i < n; i++) {
                out[i] = uniformFloat();
            }
            for (int i = 0; i + 16 <= n; i += 16) {
                fill16(out, i);
            }
            if (n % 16 != 0) {
                int base = n - 16;
                for (int i = 0; i < 16; i++) {
                    out[base + i] = uniformFloat();
                }
                fill16(out, base);
            }
        } else {
            for (int i = 0; i < n; i++) {
                out[i] = (float) scalarNormal();
            }
        }
    }

    private double scalarNormal() {
        if (hasCachedNormal) {
            hasCachedNormal = false;
            return cachedNormal;
        }
        double u1 = uniformDouble();
        double u2 = uniformDouble();
        double r = Math.sqrt(-2.0 * Math.log1p(-u2));
        double theta = 2.0 * Math.PI * u1;
        cachedNormal = r * Math.sin(theta);
        hasCachedNormal = true;
        return r * Math.cos(theta);
    }

    private void fill16(float[] d, int base) {
        if (kernel == Kernel.AVX2) {
            Avx2Math.fill16(d, base);
            return;
        }
        for (int j = 0; j < 8; j++) {
            float u1 = 1f - d[base + j];
            float u2 = d[base + j + 8];
            // torch's normal_fill_16 (scalar kernel): float logf, sqrtf, theta as float, sincosf; then * std + mean
            // (std 1, mean 0: the + 0 turns -0 into +0, as torch's does)
            float radius = (float) Math.sqrt(-2f * GlibcMath.logf(u1));
            float theta = (float) (2.0 * Math.PI * u2);
            d[base + j] = radius * GlibcMath.cosf(theta) + 0f;
            d[base + j + 8] = radius * GlibcMath.sinf(theta) + 0f;
        }
    }
}
