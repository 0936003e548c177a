package org.sdserve.orchestrator;

import io.grpc.Channel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.sdserve.common.image.RgbImage;
import org.sdserve.proto.v1.DiffusionGrpc;
import org.sdserve.proto.v1.GenerateEvent;
import org.sdserve.proto.v1.GenerateRequest;

/** The whole event stream of one Generate call, collected. */
record Events(List<GenerateEvent> all) {
    static Events generate(Channel channel, GenerateRequest request) {
        List<GenerateEvent> events = new ArrayList<>();
        DiffusionGrpc.newBlockingStub(channel).withDeadlineAfter(120, TimeUnit.SECONDS).generate(request)
                .forEachRemaining(events::add);
        return new Events(events);
    }

    List<GenerateEvent> of(GenerateEvent.EventCase kind) {
        return all.stream().filter(e -> e.getEventCase() == kind).toList();
    }

    byte[] png(int index) {
        return of(GenerateEvent.EventCase.IMAGE).get(index).getImage().getPng().toByteArray();
    }

    RgbImage image(int index) {
        return RgbImage.fromPng(png(index), "image");
    }

    GenerateEvent.EventCase first() {
        return all.get(0).getEventCase();
    }

    GenerateEvent.EventCase last() {
        return all.get(all.size() - 1).getEventCase();
    }
}
