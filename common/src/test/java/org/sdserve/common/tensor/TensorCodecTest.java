package org.sdserve.common.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.proto.v1.ElementType;
import org.sdserve.proto.v1.Tensor;

class TensorCodecTest {
    @Test
    void roundTripKeepsShapeAndBitsLittleEndian() {
        FloatTensor t = new FloatTensor(new long[] {2, 3}, new float[] {1f, -2.5f, 0f, Float.MIN_VALUE, 1e30f, -0f});
        Tensor p = TensorCodec.encode(t);
        assertEquals(ElementType.FLOAT32, p.getElementType());
        assertEquals(24, p.getData().size());
        // 1.0f little-endian is 00 00 80 3f
        assertEquals(0x3f, p.getData().byteAt(3) & 0xff);
        assertEquals(0x80, p.getData().byteAt(2) & 0xff);
        FloatTensor back = TensorCodec.decode(p, "x");
        assertArrayEquals(t.shape(), back.shape());
        assertArrayEquals(t.data(), back.data());
    }

    @Test
    void decodesFloat16() {
        // 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff (IEEE 754 binary16)
        ByteString b = ByteString.copyFrom(new byte[] {0x00, 0x3c, 0x00, (byte) 0xc0, (byte) 0xff, 0x7b});
        FloatTensor t = TensorCodec.decode(Tensor.newBuilder().setElementType(ElementType.FLOAT16).addShape(3)
                .setData(b).build(), "h");
        assertArrayEquals(new float[] {1f, -2f, 65504f}, t.data());
    }

    @Test
    void refusesInconsistentPayloadWithAMessageThatSaysWhy() {
        Tensor bad = Tensor.newBuilder().setElementType(ElementType.FLOAT32).addShape(2).addShape(2)
                .setData(TensorCodec.floatBytes(1f, 2f, 3f)).build();
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> TensorCodec.decode(bad, "latents"));
        assertEquals("latents: shape [2, 2] of FLOAT32 needs 16 bytes, got 12", e.getMessage());
        Tensor ints = Tensor.newBuilder().setElementType(ElementType.INT64).addShape(1)
                .setData(ByteString.copyFrom(new byte[8])).build();
        assertTrue(assertThrows(InvalidRequestException.class, () -> TensorCodec.decode(ints, "x")).getMessage()
                .contains("element_type must be FLOAT32 or FLOAT16, got INT64"));
        Tensor noShape = Tensor.newBuilder().setElementType(ElementType.FLOAT32).build();
        assertThrows(InvalidRequestException.class, () -> TensorCodec.decode(noShape, "x"));
        // the shape is checked before anything is allocated from it (16 bytes declaring 2 GiB; an overflowing count)
        Tensor huge = Tensor.newBuilder().setElementType(ElementType.FLOAT32).addShape(1).addShape(4).addShape(8192)
                .addShape(16383).setData(ByteString.copyFrom(new byte[16])).build();
        assertEquals("x: shape [1, 4, 8192, 16383] of FLOAT32 needs 2147352576 bytes, got 16",
                assertThrows(InvalidRequestException.class, () -> TensorCodec.decode(huge, "x")).getMessage());
        Tensor overflow = Tensor.newBuilder().setElementType(ElementType.FLOAT16).addShape(1L << 40).addShape(1L << 40)
                .setData(ByteString.copyFrom(new byte[16])).build();
        assertTrue(assertThrows(InvalidRequestException.class, () -> TensorCodec.decode(overflow, "x")).getMessage()
                .contains("too many elements"));
        Tensor.Builder deep = Tensor.newBuilder().setElementType(ElementType.FLOAT32).setData(TensorCodec.floatBytes(1f));
        for (int i = 0; i < 9; i++) {
            deep.addShape(1);
        }
        assertEquals("x: a tensor needs 1 to 8 dimensions, got 9",
                assertThrows(InvalidRequestException.class, () -> TensorCodec.decode(deep.build(), "x")).getMessage());
        Tensor few = Tensor.newBuilder().setElementType(ElementType.FLOAT32).addShape(1).addShape(4).addShape(64)
                .addShape(64).setData(ByteString.copyFrom(new byte[16])).build();
        assertEquals("x: shape [1, 4, 64, 64] of FLOAT32 needs 65536 bytes, got 16",
                assertThrows(InvalidRequestException.class, () -> TensorCodec.decode(few, "x")).getMessage());
    }

    @Test
    void float16RoundsToNearestEven() {
        assertEquals(0x3c00, Float16.fromFloat(1f) & 0xffff);
        assertEquals(0x3c00, Float16.fromFloat(1f + 0x1p-11f) & 0xffff); // tie -> even
        assertEquals(0x3c01, Float16.fromFloat(1f + 0x1.8p-11f) & 0xffff);
        assertEquals(0x7c00, Float16.fromFloat(70000f) & 0xffff); // overflow -> inf
        assertEquals(0x0001, Float16.fromFloat(0x1p-24f) & 0xffff); // smallest subnormal
        for (float f : new float[] {0.5f, -3.25f, 1024f, 0x1p-20f}) {
            assertEquals(f, Float16.toFloat(Float16.fromFloat(f)));
        }
    }

    @Test
    void sliceTileConcat() {
        FloatTensor a = new FloatTensor(new long[] {2, 2}, new float[] {1, 2, 3, 4});
        assertArrayEquals(new float[] {3, 4}, a.slice(1, 2).data());
        assertArrayEquals(new float[] {1, 2, 3, 4, 1, 2, 3, 4}, a.tile(2).data());
        FloatTensor c = FloatTensor.concat(a, a.slice(0, 1));
        assertArrayEquals(new long[] {3, 2}, c.shape());
        assertThrows(IllegalArgumentException.class,
                () -> FloatTensor.concat(a, new FloatTensor(new long[] {1, 3}, new float[3])));
    }
}
