package org.sdserve.common.noise;

/**
 * Bit-exact Java versions of glibc 2.36's single-precision {@code logf}, {@code sinf} and {@code cosf} as they run on
 * x86-64 CPUs with FMA/AVX2, where glibc's ifunc resolvers pick the {@code __logf_fma}, {@code __sinf_fma} and
 * {@code __cosf_fma} variants (Debian 12, glibc 2.36). These are the ARM optimized-routines algorithms: {@code logf}
 * uses a 16-entry (1/c, log c) table and a degree-3 polynomial for log1p evaluated in double; {@code sinf}/{@code cosf}
 * reduce the argument by a multiple of pi/2 (a single fused multiply-subtract below 120, a 4/pi bit table with integer
 * arithmetic above) and evaluate sine/cosine polynomials in double. The tables and coefficients are glibc's
 * ({@code __logf_data}, {@code __sincosf_table}, {@code __inv_pio4}); every {@code Math.fma} below is a
 * {@code vfmadd}/{@code vfnmadd} instruction in the disassembly of those variants, every other operation is a plain
 * double multiply or add, and each result is rounded to float once at the end.
 *
 * <p>torch's scalar ("default" capability) normal kernel calls {@code logf} and, because GCC fuses its
 * {@code std::sin}/{@code std::cos} pair, {@code sincosf}; glibc's {@code __sincosf_fma} evaluates the same polynomials
 * with the same fused operations, so {@code sincosf(x)} equals {@code (sinf(x), cosf(x))} bit for bit (checked over all
 * 2^32 inputs).
 *
 * <p>Verified against the machine's libm (ctypes and a C harness linked against {@code libm.so.6}, same ifunc
 * selection): identical bits for every one of the 2^32 float inputs of each function (NaN results compared as NaN, their
 * payload not reproduced), which covers the inputs torch's kernel produces (u1 = 1 - k 2^-24 and theta =
 * (float) (2 pi k 2^-24)). On a CPU without FMA glibc would pick its SSE2 variants, which round differently.
 */
final class GlibcMath {
    private GlibcMath() {
    }

    // logf: 1/c and log(c) for the 16 subintervals of [0x3f330000, 2 * 0x3f330000], ln 2, polynomial for log1p
    private static final double[] LOGF_INVC = {
        0x1.661ec79f8f3bep+0, 0x1.571ed4aaf883dp+0, 0x1.49539f0f010bp+0, 0x1.3c995b0b80385p+0,
        0x1.30d190c8864a5p+0, 0x1.25e227b0b8eap+0, 0x1.1bb4a4a1a343fp+0, 0x1.12358f08ae5bap+0,
        0x1.0953f419900a7p+0, 0x1p+0, 0x1.e608cfd9a47acp-1, 0x1.ca4b31f026aap-1,
        0x1.b2036576afce6p-1, 0x1.9c2d163a1aa2dp-1, 0x1.886e6037841edp-1, 0x1.767dcf5534862p-1,
    };
    private static final double[] LOGF_LOGC = {
        -0x1.57bf7808caadep-2, -0x1.2bef0a7c06ddbp-2, -0x1.01eae7f513a67p-2, -0x1.b31d8a68224e9p-3,
        -0x1.6574f0ac07758p-3, -0x1.1aa2bc79c81p-3, -0x1.a4e76ce8c0e5ep-4, -0x1.1973c5a611cccp-4,
        -0x1.252f438e10c1ep-5, 0x0p+0, 0x1.aa5aa5df25984p-5, 0x1.c5e53aa362eb4p-4,
        0x1.526e57720db08p-3, 0x1.bc2860d22477p-3, 0x1.1058bc8a07ee1p-2, 0x1.4043057b6ee09p-2,
    };
    private static final double LN2 = 0x1.62e42fefa39efp-1;
    private static final double LOGF_A0 = -0x1.00ea348b88334p-2;
    private static final double LOGF_A1 = 0x1.5575b0be00b6ap-2;
    private static final double LOGF_A2 = -0x1.ffffef20a4123p-2;
    private static final int LOGF_OFF = 0x3f330000;

    // sinf/cosf: sign of the sine per quadrant, 2/pi scaled by 2^24, pi/2, cosine and sine polynomials
    private static final double[] QUADRANT_SIGN = {1.0, -1.0, -1.0, 1.0};
    private static final double HPI_INV = 0x1.45F306DC9C883p+23;
    private static final double HPI = 0x1.921FB54442D18p0;
    private static final double C0 = 0x1p0;
    private static final double C1 = -0x1.ffffffd0c621cp-2;
    private static final double C2 = 0x1.55553e1068f19p-5;
    private static final double C3 = -0x1.6c087e89a359dp-10;
    private static final double C4 = 0x1.99343027bf8c3p-16;
    private static final double S1 = -0x1.555545995a603p-3;
    private static final double S2 = 0x1.1107605230bc4p-7;
    private static final double S3 = -0x1.994eb3774cf24p-13;
    /** 2 pi * 2^-64: converts the 2.62 fixed-point remainder of the large-argument reduction. */
    private static final double PI63 = 0x1.921FB54442D18p-62;
    /** 4/pi to 192 bits, 8 new bits per entry. */
    private static final int[] INV_PIO4 = {
        0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e,
        0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529,
        0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1,
        0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0,
        0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599,
        0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
    };

    // abstop12 thresholds: pi/4, 2^-12, 120, infinity
    private static final int TOP_PIO4 = 0x3f4;
    private static final int TOP_TINY = 0x398;
    private static final int TOP_120 = 0x42f;
    private static final int TOP_INF = 0x7f8;

    /** glibc's {@code logf} ({@code __logf_fma}). */
    static float logf(float x) {
        int ix = Float.floatToRawIntBits(x);
        if (ix == 0x3f800000) {
            return 0f;
        }
        if (Integer.compareUnsigned(ix - 0x00800000, 0x7f800000 - 0x00800000) >= 0) {
            if (ix << 1 == 0) {
                return Float.NEGATIVE_INFINITY;
            }
            if (ix == 0x7f800000) {
                return x;
            }
            if (ix < 0 || Integer.compareUnsigned(ix << 1, 0xff000000) >= 0) {
                return Float.NaN;
            }
            // subnormal: scale into the normal range and take 23 off the exponent
            ix = Float.floatToRawIntBits(x * 0x1p23f) - (23 << 23);
        }
        int tmp = ix - LOGF_OFF;
        int i = (tmp >>> 19) & 15;
        int k = tmp >> 23;
        double z = Float.intBitsToFloat(ix - (tmp & (0x1ff << 23)));
        double r = Math.fma(z, LOGF_INVC[i], -1.0);
        double y0 = Math.fma(k, LN2, LOGF_LOGC[i]);
        double r2 = r * r;
        double y = Math.fma(LOGF_A1, r, LOGF_A2);
        y = Math.fma(LOGF_A0, r2, y);
        y = Math.fma(y, r2, y0 + r);
        return (float) y;
    }

    /** glibc's {@code sinf} ({@code __sinf_fma}; also the sine of {@code __sincosf_fma}). */
    static float sinf(float y) {
        return sinOrCos(y, false);
    }

    /** glibc's {@code cosf} ({@code __cosf_fma}; also the cosine of {@code __sincosf_fma}). */
    static float cosf(float y) {
        return sinOrCos(y, true);
    }

    private static float sinOrCos(float y, boolean cos) {
        int bits = Float.floatToRawIntBits(y);
        int top = (bits >>> 20) & 0x7ff;
        double x = y;
        if (top < TOP_PIO4) {
            if (top < TOP_TINY) {
                return cos ? 1f : y;
            }
            return cos ? cosPoly(x * x, false) : sinPoly(x, x * x);
        }
        int n;
        int quadrant;
        if (top < TOP_120) {
            int q = ((int) (x * HPI_INV) + 0x800000) >> 24;
            x = Math.fma(-q, HPI, x);
            n = q;
            quadrant = q;
        } else if (top < TOP_INF) {
            long fixed = largeProduct(bits);
            long q = (fixed + (1L << 61)) >>> 62;
            x = (double) (fixed - (q << 62)) * PI63;
            n = (int) q;
            quadrant = n + (bits >>> 31);
        } else {
            return Float.NaN;
        }
        boolean negated = (quadrant & 2) != 0;
        boolean useCos = ((n & 1) != 0) != cos;
        return useCos ? cosPoly(x * x, negated) : sinPoly(x * QUADRANT_SIGN[quadrant & 3], x * x);
    }

    /** The fixed-point product of the float's significand with 4/pi: quadrant in bits 62..63, fraction below. */
    private static long largeProduct(int bits) {
        int base = (bits >>> 26) & 15;
        int m = ((bits & 0xffffff) | 0x800000) << ((bits >>> 23) & 7);
        long mu = m & 0xffffffffL;
        long lo32 = (m * INV_PIO4[base]) & 0xffffffffL;
        long mid = mu * (INV_PIO4[base + 4] & 0xffffffffL);
        long low = mu * (INV_PIO4[base + 8] & 0xffffffffL);
        return ((low >>> 32) | (lo32 << 32)) + mid;
    }

    private static float sinPoly(double x, double x2) {
        double x3 = x2 * x;
        double s1 = Math.fma(x2, S3, S2);
        double x7 = x2 * x3;
        double s = Math.fma(x3, S1, x);
        return (float) Math.fma(s1, x7, s);
    }

    /** The cosine polynomial; {@code negated} uses glibc's second table, whose cosine coefficients are negated. */
    private static float cosPoly(double x2, boolean negated) {
        double sg = negated ? -1.0 : 1.0;
        double x4 = x2 * x2;
        double c1 = Math.fma(x2, sg * C1, sg * C0);
        double c2 = Math.fma(x2, sg * C4, sg * C3);
        double x6 = x2 * x4;
        double c = Math.fma(x4, sg * C2, c1);
        return (float) Math.fma(c2, x6, c);
    }
}
