package org.sdserve.orchestrator;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.sdserve.common.image.RgbImage;
import org.sdserve.common.onnx.ExecutionOptions;
import org.sdserve.common.testing.DemoModel;
import org.sdserve.eval.judge.DemoScenes;
import org.sdserve.eval.judge.PromptJudge;
import org.sdserve.orchestrator.embedded.EmbeddedStages;
import org.sdserve.orchestrator.grpc.StageClients;
import org.sdserve.proto.v1.GenerateRequest;

/**
 * The Java pipeline measured with the judge the model card uses (docs/prompt-adherence-judge.md): the same 64
 * fixed prompts x seeds 0 and 1, DDIM 25 steps, guidance 7.5, through the embedded services.
 */
class PromptAdherenceTest {

    @Test
    void followsTheFixedPromptSet() {
        int n = 0;
        int colour = 0;
        int background = 0;
        int shape = 0;
        int size = 0;
        try (EmbeddedStages stages = EmbeddedStages.start(DemoModel.directory(), ExecutionOptions.CPU, 64 << 20,
                StageClients.Timeouts.DEFAULT)) {
            try (InProcessOrchestrator o = InProcessOrchestrator.start(stages.clients(), 0L, 1)) {
                ManagedChannel ch = o.channel;
                for (int i = 0; i < DemoScenes.COUNT; i++) {
                    // scenes.judge_prompts(64) of tools/demo-model/scenes.py
                    DemoScenes scene = DemoScenes.of(i);
                    String s = scene.shape();
                    String col = scene.colour();
                    String bg = scene.background();
                    String sz = scene.size();
                    Events ev = Events.generate(ch, GenerateRequest.newBuilder().setPrompt(scene.prompt())
                            .setSeed(0).setNumImages(2).setSteps(25).setGuidanceScale(7.5f).setScheduler("ddim").build());
                    for (int k = 0; k < 2; k++) {
                        PromptJudge.Verdict v = PromptJudge.judge(RgbImage.fromPng(ev.png(k), "image"));
                        n++;
                        colour += v.colour().equals(col) ? 1 : 0;
                        background += v.background().equals(bg) ? 1 : 0;
                        shape += v.shape().equals(s) ? 1 : 0;
                        size += v.size().equals(sz) ? 1 : 0;
                    }
                }
                ch.shutdownNow();
            }
        }
        System.out.printf(Locale.ROOT, "Java pipeline prompt adherence over %d images: colour %.1f%%, background "
                        + "%.1f%%, shape %.1f%%, size %.1f%%%n", n, 100.0 * colour / n, 100.0 * background / n,
                100.0 * shape / n, 100.0 * size / n);
        // the demo model issue's aims; the PyTorch sampler measured 100% on every attribute (model card)
        assertTrue(colour >= 0.95 * n, "colour " + colour + "/" + n);
        assertTrue(background >= 0.95 * n, "background " + background + "/" + n);
        assertTrue(shape >= 0.90 * n, "shape " + shape + "/" + n);
    }
}
