package org.sdserve.denoise.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.sdserve.common.error.InvalidRequestException;
import org.sdserve.common.error.ModelContractException;
import org.sdserve.common.tensor.FloatTensor;

class SchedulerConfigTest {
    private static SchedulerConfig parse(String json) throws Exception {
        return SchedulerConfig.parse(new ObjectMapper().readTree(json));
    }

    @Test
    void readsSd15Config() throws Exception {
        // SD 1.5's scheduler/scheduler_config.json (shared model-format notes)
        SchedulerConfig c = parse("{\"_class_name\": \"PNDMScheduler\", \"num_train_timesteps\": 1000, "
                + "\"beta_start\": 0.00085, \"beta_end\": 0.012, \"beta_schedule\": \"scaled_linear\", "
                + "\"set_alpha_to_one\": false, \"skip_prk_steps\": true, \"steps_offset\": 1, \"clip_sample\": false, "
                + "\"timestep_spacing\": \"leading\", \"trained_betas\": null}");
        assertEquals(SchedulerConfig.sd15().numTrainTimesteps(), c.numTrainTimesteps());
        assertEquals("scaled_linear", c.betaSchedule());
        assertEquals(1, c.stepsOffset());
        assertEquals("epsilon", c.predictionType());
        // DDIM 25 steps, leading, offset 1: 961, 921, ..., 1
        DdimScheduler d = new DdimScheduler(c, 25, 0f);
        assertEquals(961, d.timestep(0));
        assertEquals(1, d.timestep(24));
    }

    @Test
    void refusesWhatItWouldOtherwiseIgnore() {
        assertTrue(assertThrows(ModelContractException.class, () -> parse("{\"beta_schedule\": \"linear\", "
                + "\"shift_factor\": 3}")).getMessage().contains("unknown option(s) [shift_factor]"));
        assertTrue(assertThrows(ModelContractException.class, () -> parse("{\"euler_at_final\": true}")).getMessage()
                .contains("euler_at_final=true"));
        assertTrue(assertThrows(ModelContractException.class, () -> parse("{\"timestep_spacing\": \"karras\"}"))
                .getMessage().contains("timestep_spacing must be leading, trailing or linspace"));
        assertTrue(assertThrows(ModelContractException.class, () -> parse("{\"prediction_type\": \"flow\"}"))
                .getMessage().contains("prediction_type must be"));
    }

    @Test
    void scaledLinearAlphasCumprodMatchesDiffusers() {
        // diffusers' scaled_linear: torch.cumprod(1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000)**2), float32,
        // evaluated with Debian's torch 1.13: [0] 0.9991499781608582, [500] 0.2763324975967407,
        // [999] 0.0046600960195064545
        NoiseSchedule s = new NoiseSchedule(SchedulerConfig.sd15());
        assertEquals(0.9991499781608582, s.alphaCumprod(0), 1e-7);
        assertEquals(0.2763324975967407, s.alphaCumprod(500), 1e-7);
        assertEquals(0.0046600960195064545, s.alphaCumprod(999), 1e-9);
    }

    @Test
    void thresholdingAndLuLambdasAreReadAndThresholdingBoundsX0WhereDiffusersAppliesIt() throws Exception {
        SchedulerConfig c = parse("{\"num_train_timesteps\": 1000, \"thresholding\": true, "
                + "\"dynamic_thresholding_ratio\": 0.9, \"sample_max_value\": 2.0, \"use_lu_lambdas\": true}");
        assertEquals(new SchedulerConfig.Thresholding(0.9, 2.0), c.thresholding());
        assertTrue(c.useLuLambdas());
        assertTrue(Schedulers.create("dpmpp_2m", c, 10, 0f) instanceof DpmSolverMultistepScheduler);
        // where diffusers thresholds x0 (DDIM, DDPM, LCM, UniPC, DPM-Solver, DEIS), each x0 ends in [-1, 1]: clamped
        // to [-s, s] and divided by s
        FloatTensor x = new FloatTensor(new long[] {1, 4, 2, 2}, new float[] {3f, -2f, 0.5f, 9f, 1f, 1f, -7f, 0.1f,
            2f, 2f, 2f, 2f, -1f, 0f, 4f, 5f});
        for (String name : new String[] {"ddim", "ddpm", "lcm", "unipc", "dpmpp_2m", "deis"}) {
            Scheduler s = Schedulers.create(name, c, 10, 0f);
            float[] x0 = s.step(x, 0, x, org.sdserve.common.noise.NoiseSource.wholeBatch(0)).predOriginal().data();
            for (float v : x0) {
                assertTrue(Math.abs(v) <= 1f + 1e-6f, name + ": x0 " + v + " not thresholded");
            }
        }
        assertEquals(null, parse("{}").thresholding());
    }

    @Test
    void schedulerNamesAreCheckedWithTheValidOnesListed() {
        assertTrue(assertThrows(InvalidRequestException.class, () -> Schedulers.create("plms",
                SchedulerConfig.sd15(), 10, 0f)).getMessage().contains("valid: ddim, euler, euler_karras, euler_a"));
    }
}
