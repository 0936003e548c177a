package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sdserve.common.model.ModelDirectory;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * An inpainting UNet (9 input channels) served end to end: the demo model with its UNet replaced by the tiny
 * inpainting graph of tools/goldens/tiny_graphs.py (out_sample = latents * t + mask + 10 * masked-image latents).
 * Describe says it inpaints, a job without an image and a mask is refused, and one with them runs through the masked
 * image's encode and the denoiser's 9-channel input to its images.
 */
class InpaintingUNetTest {
    @Test
    void anInpaintingUNetServesInpaintingJobsAndRefusesTextOnlyOnes(@TempDir Path dir) throws Exception {
        Path demo = DemoModel.path();
        try (Stream<Path> files = Files.walk(demo)) {
            for (Path f : files.toList()) {
                Path to = dir.resolve(demo.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(to);
                } else if (!f.endsWith(Path.of("unet", "model.onnx"))) {
                    Files.copy(f, to);
                }
            }
        }
        Files.copy(Path.of(InpaintingUNetTest.class.getResource("/tiny/unet-inpaint/unet/model.onnx").toURI()),
                dir.resolve("unet/model.onnx"));
        try (EmbeddedStages stages = EmbeddedStages.start(ModelDirectory.open(dir), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT);
             InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 3L, 1)) {
            assertTrue(stages.clients().description().getInpainting());
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> Events.generate(o.channel,
                    GenerateRequest.newBuilder().setPrompt("a red circle").setSteps(4).build()));
            assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("this model's UNet inpaints (it takes a mask): give "
                    + "init_image and mask_image"), e.getStatus().getDescription());
            ByteString init = EmbeddedGenerateTest.scene(64, 0x1e46dc, 0xdc1e1e);
            ByteString mask = EmbeddedGenerateTest.scene(64, 0xffffff, 0);
            for (float strength : new float[] {1f, 0.5f}) {
                Events ev = Events.generate(o.channel, GenerateRequest.newBuilder().setPrompt("a yellow square")
                        .setSteps(4).setNumImages(2).setInitImage(init).setMaskImage(mask).setStrength(strength)
                        .build());
                assertEquals(2, ev.of(GenerateEvent.EventCase.IMAGE).size(), "strength " + strength);
                assertEquals(64, ev.image(1).width());
            }
        }
    }
}
