package org.sdserve.orchestrator.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The compacted log alone: what a reader at each cursor gets, and what the log keeps. */
class JobLogTest {
    /** A reader that takes {@code budget} events, then says it is not ready. */
    private static final class Reader implements JobSubscriber {
        final List<Long> seqs = new ArrayList<>();
        final List<JobEvent> events = new ArrayList<>();
        int budget;
        boolean ended;
        Throwable failure;

        Reader(int budget) {
            this.budget = budget;
        }

        @Override
        public boolean ready() {
            return budget > 0;
        }

        @Override
        public void event(long seq, JobEvent event) {
            budget--;
            seqs.add(seq);
            events.add(event);
        }

        @Override
        public void end(Throwable failure) {
            ended = true;
            this.failure = failure;
        }
    }

    private static JobEvent.Progress step(int i) {
        return new JobEvent.Progress(JobEvent.Stage.DENOISING, i, 10, 1000 - i, i, 0);
    }

    private static JobEvent.Preview preview(int step, int index) {
        return new JobEvent.Preview(step, index, ByteString.copyFrom(new byte[100]));
    }

    private static Subscription follow(JobLog log, Reader r, long after) {
        Subscription s = new Subscription(null, log, r, after, () -> { });
        log.add(s);
        s.drain();
        return s;
    }

    @Test
    void aReaderThatStallsGetsTheLatestOfEachKindAndEverythingElseInOrder() {
        JobLog log = new JobLog();
        Reader r = new Reader(1);
        Subscription s = follow(log, r, 0);
        log.append(new JobEvent.Accepted("j", null, List.of(1L)));
        for (int i = 1; i <= 10; i++) {
            log.append(step(i));
            log.append(preview(i, 0));
        }
        JobEvent.Image image = new JobEvent.Image(0, 1, 64, 64, ByteString.copyFrom(new byte[500]));
        log.append(image);
        log.append(new JobEvent.Completed(Map.of(), 5));
        log.end(null);
        assertEquals(1, r.events.size(), "one event while ready");
        r.budget = 100;
        s.drain();
        // Accepted, then what the log holds: step 10 (superseding 1..9), the image, Completed; previews dropped
        assertEquals(List.of(JobEvent.Accepted.class, JobEvent.Progress.class, JobEvent.Image.class,
                JobEvent.Completed.class), r.events.stream().map(Object::getClass).toList());
        assertEquals(10, ((JobEvent.Progress) r.events.get(1)).step());
        assertSame(image, r.events.get(2));
        assertTrue(r.ended);
        assertNull(r.failure);
        for (int i = 1; i < r.seqs.size(); i++) {
            assertTrue(r.seqs.get(i) > r.seqs.get(i - 1));
        }
        assertEquals(500, log.bytes(), "the image's bytes; the previews went at the end");
    }

    @Test
    void aReaderThatKeepsUpGetsEveryEvent() {
        JobLog log = new JobLog();
        Reader r = new Reader(Integer.MAX_VALUE);
        follow(log, r, 0);
        for (int i = 1; i <= 5; i++) {
            log.append(step(i));
            log.append(preview(i, 0));
            log.append(preview(i, 1));
        }
        assertEquals(15, r.events.size());
        assertEquals(List.of(1L, 2L, 3L), r.seqs.subList(0, 3));
        assertEquals(200, log.bytes(), "one preview per image index is kept");
    }

    @Test
    void aReaderFromASeqGetsOnlyLaterEventsAndTheFailure() {
        JobLog log = new JobLog();
        log.append(new JobEvent.Accepted("j", null, List.of(1L)));
        log.append(step(1));
        log.append(step(2)); // seq 3 supersedes seq 2
        IllegalStateException boom = new IllegalStateException("boom");
        log.end(boom);
        Reader late = new Reader(10);
        follow(log, late, 1);
        assertEquals(List.of(3L), late.seqs);
        assertSame(boom, late.failure);
        Reader done = new Reader(10);
        follow(log, done, 3);
        assertTrue(done.events.isEmpty());
        assertTrue(done.ended, "a reader past the last event still hears the end");
    }
}
