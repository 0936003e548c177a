package org.sdserve.orchestrator;

import com.google.protobuf.ByteString;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * Whole-image parity with the PyTorch sampler of the same weights: the goldens in src/test/resources/parity
 * (tools/demo-model/parity_goldens.py: same prompt, seeds, scheduler, steps, guidance; image-to-image from the
 * same init image at the same strength) against the embedded services; every pixel within 2/255.
 */
class ParityTest {
    private static final int TOLERANCE = 2;

    @Test
    void servicesReproduceThePyTorchSampler() throws Exception {
        String override = System.getProperty("sd.parity.dir");
        Path dir = override != null ? Path.of(override)
                : Path.of(ParityTest.class.getResource("/parity/parity.json").toURI()).getParent();
        JsonNode spec = new ObjectMapper().readTree(dir.resolve("parity.json").toFile());
        try (EmbeddedStages stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT)) {
            try (InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 0L, 1)) {
                GenerateRequest base = GenerateRequest.newBuilder().setNegativePrompt(spec.get("negative_prompt")
                        .asText()).setGuidanceScale((float) spec.get("guidance_scale").asDouble()).build();
                for (JsonNode c : spec.get("cases")) {
                    compare(o.channel, dir, c, base.toBuilder().setPrompt(spec.get("prompt").asText()), "");
                }
                // image-to-image (diffusers' img2img pipeline): from a drawn scene, at two strengths
                JsonNode i2i = spec.get("img2img");
                ByteString init = ByteString.copyFrom(Files.readAllBytes(dir.resolve(i2i.get("init_image").asText())));
                for (JsonNode c : i2i.get("cases")) {
                    compare(o.channel, dir, c, base.toBuilder().setPrompt(i2i.get("prompt").asText())
                            .setInitImage(init).setStrength((float) c.get("strength").asDouble()),
                            " img2img strength " + c.get("strength").asText());
                }
                // inpainting with the demo model's 4-channel UNet (diffusers' inpaint pipeline's latent blending)
                JsonNode inpaint = spec.get("inpaint");
                ByteString mask = ByteString.copyFrom(Files.readAllBytes(dir.resolve(inpaint.get("mask_image")
                        .asText())));
                for (JsonNode c : inpaint.get("cases")) {
                    compare(o.channel, dir, c, base.toBuilder().setPrompt(inpaint.get("prompt").asText())
                            .setInitImage(init).setMaskImage(mask).setStrength((float) c.get("strength").asDouble()),
                            " inpaint strength " + c.get("strength").asText());
                }
                o.channel.shutdownNow();
            }
        }
    }

    private static void compare(ManagedChannel ch, Path dir, JsonNode c, GenerateRequest.Builder request,
                                String what) throws Exception {
        Events ev = Events.generate(ch, request.setScheduler(c.get("scheduler").asText())
                .setSteps(c.get("steps").asInt()).setSeed(c.get("seeds").get(0).asLong())
                .setNumImages(c.get("seeds").size()).build());
        for (int i = 0; i < c.get("files").size(); i++) {
            RgbImage golden = RgbImage.fromPng(Files.readAllBytes(dir.resolve(c.get("files").get(i).asText())),
                    "golden");
            RgbImage ours = ev.image(i);
            assertEquals(golden.width(), ours.width());
            int worst = 0;
            long total = 0;
            for (int k = 0; k < golden.rgb().length; k++) {
                int d = Math.abs((golden.rgb()[k] & 0xff) - (ours.rgb()[k] & 0xff));
                worst = Math.max(worst, d);
                total += d;
            }
            String name = c.get("scheduler").asText() + what + " seed " + c.get("seeds").get(i);
            System.out.printf(Locale.ROOT, "parity %s: max |diff| %d/255, mean %.4f/255%n", name, worst,
                    (double) total / golden.rgb().length);
            assertTrue(worst <= TOLERANCE, name + ": a pixel differs by " + worst + "/255");
        }
    }
}
