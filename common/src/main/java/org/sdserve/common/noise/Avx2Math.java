package org.sdserve.common.noise;

/**
 * Bit-exact Java port of the arithmetic of torch's AVX2 CPU kernel for float32 normal noise
 * ({@code normal_fill_16_AVX2} in torch 1.13's aten/src/ATen/native/cpu/DistributionKernels.cpp), as built in
 * Debian's torch 1.13 package.
 *
 * <p>That kernel does Box-Muller on 8 float lanes at once: u1 = 1 - d[j], u2 = d[j + 8], radius = sqrt(-2 log u1),
 * theta = 2 pi u2 (2 pi rounded to float), then d[j] = radius * cos(theta), d[j + 8] = radius * sin(theta), written
 * through an fmadd with std = 1 and mean = 0 (which turns -0 into +0). Its log and sincos are not libm's but the
 * float approximations of aten/src/ATen/native/cpu/avx_mathfun.h (Giovanni Garberoglio's AVX version of Julien
 * Pommier's sse_mathfun, itself modelled on cephes' logf and sinf/cosf):
 * <ul>
 * <li>log: split the argument into exponent e and a mantissa m in [0.5, 1); if m &lt; sqrt(1/2) use 2m - 1 and
 * e - 1, else m - 1; evaluate cephes' degree-8 polynomial in x (times x^3), add e times the low part of ln 2,
 * subtract x^2/2, add x and e times the high part of ln 2.</li>
 * <li>sincos: reduce |x| by multiples of pi/4 (octant j = trunc(|x| 4/pi) rounded up to even, pi/4 subtracted in
 * three pieces), evaluate cephes' cosine and sine polynomials on the reduced argument, pick which one is sine and
 * which is cosine from bit 1 of j, and the signs from bit 2 of j (and of j - 2 for the cosine).</li>
 * </ul>
 *
 * <p>GCC compiled torch's AVX2 code with FMA enabled and contracted most multiply-then-add pairs of those intrinsics
 * into fused multiply-adds; which ones were fused was worked out against torch's own output (tens of millions of
 * values, all bit-identical): every Horner step of the three polynomials, the three-piece argument reduction, the
 * sine's final {@code y*x + x}, the log's {@code y*z + e*q1} (the product y*z is fused, e*q1 is rounded first), its
 * {@code - z/2} and {@code + e*q2}, and the cosine's {@code y*z - z/2} (y*z fused, z/2 rounded first). The
 * remaining products (x*x, y*x before the fused step, -2 * log, 2 pi * u2, radius * cos/sin) are plain float
 * multiplies. Java's float arithmetic is strict IEEE single precision, so the results match lane for lane.
 *
 * <p>Inputs are torch's uniform floats in [0, 1) (multiples of 2^-24), so u1 lies in (0, 1]; the NaN and denormal
 * handling of the original log is kept only as far as it matters for such inputs.
 */
final class Avx2Math {
    private Avx2Math() {
    }

    private static final float TWO_PI = (float) (2.0 * Math.PI);

    // log (cephes logf)
    private static final float SQRT_HALF = 0.707106781186547524f;
    private static final float LOG_P0 = 7.0376836292E-2f;
    private static final float LOG_P1 = -1.1514610310E-1f;
    private static final float LOG_P2 = 1.1676998740E-1f;
    private static final float LOG_P3 = -1.2420140846E-1f;
    private static final float LOG_P4 = 1.4249322787E-1f;
    private static final float LOG_P5 = -1.6668057665E-1f;
    private static final float LOG_P6 = 2.0000714765E-1f;
    private static final float LOG_P7 = -2.4999993993E-1f;
    private static final float LOG_P8 = 3.3333331174E-1f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float LN2_HI = 0.693359375f;

    // sin/cos (cephes sinf/cosf)
    private static final float FOUR_OVER_PI = 1.27323954473516f;
    private static final float NEG_PIO4_A = -0.78515625f;
    private static final float NEG_PIO4_B = -2.4187564849853515625e-4f;
    private static final float NEG_PIO4_C = -3.77489497744594108e-8f;
    private static final float SIN_P0 = -1.9515295891E-4f;
    private static final float SIN_P1 = 8.3321608736E-3f;
    private static final float SIN_P2 = -1.6666654611E-1f;
    private static final float COS_P0 = 2.443315711809948E-005f;
    private static final float COS_P1 = -1.388731625493765E-003f;
    private static final float COS_P2 = 4.166664568298827E-002f;

    /**
     * Box-Muller transform of the 16 uniforms {@code d[base..base+15]} in place, exactly as torch's AVX2 kernel:
     * element j (j &lt; 8) is paired with j + 8, u1 = 1 - d[base + j], u2 = d[base + j + 8].
     */
    static void fill16(float[] d, int base) {
        for (int j = 0; j < 8; j++) {
            float u1 = 1f - d[base + j];
            float u2 = d[base + j + 8];
            float radius = (float) Math.sqrt(-2f * log(u1));
            float theta = TWO_PI * u2;
            polar(radius, theta, d, base + j, base + j + 8);
        }
    }

    /** avx_mathfun's float log, with GCC's contractions; NaN for x &lt;= 0. */
    static float log(float x) {
        boolean invalid = !(x > 0f);
        float v = Math.max(x, Float.MIN_NORMAL);
        int bits = Float.floatToRawIntBits(v);
        float e = (float) ((bits >>> 23) - 0x7f) + 1f;
        v = Float.intBitsToFloat((bits & ~0x7f800000) | 0x3f000000); // mantissa in [0.5, 1)
        boolean small = v < SQRT_HALF;
        float keep = small ? v : 0f;
        v = v - 1f;
        e = e - (small ? 1f : 0f);
        v = v + keep;

        float z = v * v;
        float y = Math.fma(LOG_P0, v, LOG_P1);
        y = Math.fma(y, v, LOG_P2);
        y = Math.fma(y, v, LOG_P3);
        y = Math.fma(y, v, LOG_P4);
        y = Math.fma(y, v, LOG_P5);
        y = Math.fma(y, v, LOG_P6);
        y = Math.fma(y, v, LOG_P7);
        y = Math.fma(y, v, LOG_P8);
        y = y * v;
        y = Math.fma(y, z, e * LN2_LO);
        y = Math.fma(-z, 0.5f, y);
        float r = Math.fma(e, LN2_HI, v + y);
        return invalid ? Float.NaN : r;
    }

    /**
     * avx_mathfun's sincos of {@code theta}, with GCC's contractions, then torch's output step: stores
     * radius*cos(theta) (through fmadd(., 1, 0)) at {@code cosIndex} and radius*sin(theta) at {@code sinIndex}.
     */
    private static void polar(float radius, float theta, float[] out, int cosIndex, int sinIndex) {
        boolean negative = Float.floatToRawIntBits(theta) < 0;
        float x = Math.abs(theta);
        int octant = ((int) (x * FOUR_OVER_PI) + 1) & ~1;
        float k = (float) octant;
        x = Math.fma(k, NEG_PIO4_A, x);
        x = Math.fma(k, NEG_PIO4_B, x);
        x = Math.fma(k, NEG_PIO4_C, x);
        boolean negateSin = negative ^ ((octant & 4) != 0);
        boolean negateCos = (~(octant - 2) & 4) != 0;
        boolean sinFromSinPoly = (octant & 2) == 0;

        float z = x * x;
        float c = Math.fma(COS_P0, z, COS_P1);
        c = Math.fma(c, z, COS_P2);
        c = c * z;
        c = Math.fma(c, z, -(z * 0.5f));
        c = c + 1f;

        float s = Math.fma(SIN_P0, z, SIN_P1);
        s = Math.fma(s, z, SIN_P2);
        s = s * z;
        s = Math.fma(s, x, x);

        // lane select as torch does it (masked parts are +0, then subtract and add)
        float sinPart = sinFromSinPoly ? s : 0f;
        float cosPart = sinFromSinPoly ? 0f : c;
        float sinValue = cosPart + sinPart;
        float cosValue = (c - cosPart) + (s - sinPart);
        if (negateSin) {
            sinValue = -sinValue;
        }
        if (negateCos) {
            cosValue = -cosValue;
        }
        out[cosIndex] = radius * cosValue + 0f;
        out[sinIndex] = radius * sinValue + 0f;
    }
}
