package org.sdserve.orchestrator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * A Server-Sent Events response read as the text/event-stream format defines it (id, event, data lines; a blank
 * line ends an event; lines starting with ':' are comments). Closing it drops the connection.
 */
final class SseEvents implements AutoCloseable {
    /** One event: its id (the job's seq; null if none), its name, its data parsed as JSON. */
    record Event(String id, String name, JsonNode data) {
        long seq() {
            return Long.parseLong(id);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    final int status;
    final String contentType;
    private final InputStream body;
    private final BufferedReader lines;

    private SseEvents(HttpResponse<InputStream> r) {
        status = r.statusCode();
        contentType = r.headers().firstValue("content-type").orElse("");
        body = r.body();
        lines = new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8));
    }

    static SseEvents open(HttpClient http, HttpRequest request) {
        try {
            return new SseEvents(http.send(request, HttpResponse.BodyHandlers.ofInputStream()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** GET {@code url} with Accept: text/event-stream and, when not null, Last-Event-ID. */
    static SseEvents get(HttpClient http, String url, String lastEventId) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(120))
                .header("Accept", "text/event-stream");
        if (lastEventId != null) {
            b.header("Last-Event-ID", lastEventId);
        }
        return open(http, b.GET().build());
    }

    /** The next event, or null at the end of the stream. */
    Event next() {
        try {
            String id = null;
            String name = "message";
            StringBuilder data = null;
            for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                if (line.isEmpty()) {
                    if (data != null) {
                        return new Event(id, name, JSON.readTree(data.toString()));
                    }
                    continue; // a comment's block
                }
                if (line.startsWith(":")) {
                    continue;
                }
                int colon = line.indexOf(':');
                String field = colon < 0 ? line : line.substring(0, colon);
                String value = colon < 0 ? "" : line.substring(colon + 1).replaceFirst("^ ", "");
                switch (field) {
                    case "id" -> id = value;
                    case "event" -> name = value;
                    case "data" -> data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
                    default -> { } // the format says to ignore other fields
                }
            }
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The whole body, for a response that is not an event stream (an error). */
    JsonNode json() {
        try {
            return JSON.readTree(body);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        try {
            body.close();
        } catch (IOException e) {
            // dropped either way
        }
    }
}
