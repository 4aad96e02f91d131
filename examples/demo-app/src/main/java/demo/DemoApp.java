package demo;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A stand-in for a Spring Boot service: {@code /actuator/health}, {@code /} with the version, a port from
 * {@code --server.port}, an optional slow start, and a graceful stop on SIGTERM.
 *
 * <p>Options (each also read from the environment):
 * <ul>
 *   <li>{@code --server.port=8080} ({@code SERVER_PORT})</li>
 *   <li>{@code --server.address=127.0.0.1} ({@code SERVER_ADDRESS})</li>
 *   <li>{@code --startup-delay=2s} or {@code 500ms} ({@code DEMO_STARTUP_DELAY}): wait before listening</li>
 *   <li>{@code --health=down} ({@code DEMO_HEALTH}): answer 503 {@code {"status":"DOWN"}}</li>
 *   <li>{@code --health-fail-after=5s} ({@code DEMO_HEALTH_FAIL_AFTER}): healthy at first, DOWN after that long</li>
 *   <li>{@code --shutdown-grace=30s} ({@code DEMO_SHUTDOWN_GRACE}): the most SIGTERM waits for in-flight requests</li>
 *   <li>{@code --fail-ratio=0.2} ({@code DEMO_FAIL_RATIO}): answer 500 to that share of requests to {@code /}, as a bad release
 *       that passes its health check does</li>
 *   <li>{@code --stall-ratio=0.05} ({@code DEMO_STALL_RATIO}): accept that share of requests to {@code /} and never answer
 *       them, as a release with a deadlock on one path does (its health check still answers)</li>
 * </ul>
 * Other arguments (such as {@code --spring.profiles.active=blue}) are accepted and ignored.
 * {@code GET /slow?ms=N} answers after N milliseconds, to have requests in flight during a stop.
 */
public final class DemoApp {
    private static final AtomicInteger IN_FLIGHT = new AtomicInteger();

    public static void main(String[] args) throws Exception {
        long started = System.currentTimeMillis();
        int port = Integer.parseInt(option(args, "server.port", "SERVER_PORT", "8080"));
        String address = option(args, "server.address", "SERVER_ADDRESS", "127.0.0.1");
        long startupDelay = millis(option(args, "startup-delay", "DEMO_STARTUP_DELAY", "0ms"));
        boolean healthy = !"down".equalsIgnoreCase(option(args, "health", "DEMO_HEALTH", "up"));
        long grace = millis(option(args, "shutdown-grace", "DEMO_SHUTDOWN_GRACE", "30s"));
        // For tests of the watch window: healthy at first, DOWN once this much time has passed since start.
        long healthFailAfter = millis(option(args, "health-fail-after", "DEMO_HEALTH_FAIL_AFTER", "0ms"));
        String version = version();
        double failRatio = Double.parseDouble(option(args, "fail-ratio", "DEMO_FAIL_RATIO", "0"));
        AtomicInteger served = new AtomicInteger();
        double stallRatio = Double.parseDouble(option(args, "stall-ratio", "DEMO_STALL_RATIO", "0"));
        AtomicInteger seen = new AtomicInteger();

        log("Starting demo-app " + version + " (pid " + ProcessHandle.current().pid() + ")");
        if (startupDelay > 0) {
            log("Simulating a slow start: " + startupDelay + " ms");
            Thread.sleep(startupDelay);
        }

        HttpServer server = HttpServer.create(new InetSocketAddress(address, port), 128);
        ExecutorService workers = Executors.newFixedThreadPool(32);
        server.setExecutor(workers);
        server.createContext("/actuator/health", exchange -> counted(exchange, () -> {
            boolean failed = healthFailAfter > 0 && System.currentTimeMillis() - started > healthFailAfter;
            if (healthy && !failed) {
                send(exchange, 200, "application/json", "{\"status\":\"UP\"}");
            } else {
                send(exchange, 503, "application/json", "{\"status\":\"DOWN\"}");
            }
        }));
        server.createContext("/slow", exchange -> counted(exchange, () -> {
            long wait = 1000;
            String query = exchange.getRequestURI().getQuery();
            if (query != null && query.startsWith("ms=")) {
                wait = Long.parseLong(query.substring(3));
            }
            sleep(wait);
            send(exchange, 200, "text/plain", "demo-app " + version + " slow " + wait + "ms\n");
        }));
        server.createContext("/", exchange -> {
            if (stallRatio > 0 && "/".equals(exchange.getRequestURI().getPath())
                    && seen.incrementAndGet() % Math.max(1, Math.round(1 / stallRatio)) == 0) {
                // Neither answered nor closed: the client (nginx) waits until its own read timeout.
                return;
            }
            counted(exchange, () -> {
                if (!"/".equals(exchange.getRequestURI().getPath())) {
                    send(exchange, 404, "text/plain", "not found\n");
                } else if (failRatio > 0 && served.incrementAndGet() % Math.max(1, Math.round(1 / failRatio)) == 0) {
                    send(exchange, 500, "text/plain", "demo-app " + version + " failed on purpose\n");
                } else {
                    send(exchange, 200, "text/plain", "demo-app " + version + "\n");
                }
            });
        });

        // SIGTERM runs this hook: stop accepting, let in-flight requests finish (up to the grace), then exit.
        // The JVM then exits with 143 (128 + SIGTERM), as a Spring Boot app does.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("SIGTERM: stopping after " + IN_FLIGHT.get() + " in-flight request(s)");
            server.stop((int) Math.max(1, (grace + 999) / 1000));
            workers.shutdown();
            try {
                workers.awaitTermination(grace, TimeUnit.MILLISECONDS);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            log("Stopped");
        }, "graceful-shutdown"));

        server.start();
        log("Started demo-app " + version + " on " + address + ":" + server.getAddress().getPort()
                + " in " + (System.currentTimeMillis() - started) + " ms" + (healthy ? "" : " (health: DOWN)"));
    }

    private interface Handler {
        void handle() throws IOException;
    }

    private static void counted(HttpExchange exchange, Handler handler) throws IOException {
        IN_FLIGHT.incrementAndGet();
        try {
            handler.handle();
        } finally {
            IN_FLIGHT.decrementAndGet();
            exchange.close();
        }
    }

    private static void send(HttpExchange exchange, int status, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    /** The version stamped in the jar's manifest, or {@code -Ddemo.version}, or "unknown" when run from classes. */
    private static String version() {
        String property = System.getProperty("demo.version");
        if (property != null && !property.isEmpty()) {
            return property;
        }
        String manifest = DemoApp.class.getPackage().getImplementationVersion();
        return manifest != null ? manifest : "unknown";
    }

    /** {@code --name=value} from the arguments, else the environment variable, else the default. */
    private static String option(String[] args, String name, String environment, String fallback) {
        String prefix = "--" + name + "=";
        for (String arg : args) {
            if (arg.startsWith(prefix)) {
                return arg.substring(prefix.length());
            }
        }
        String value = System.getenv(environment);
        return value != null && !value.isEmpty() ? value : fallback;
    }

    /** Durations as pushdeploy writes them: {@code 250ms}, {@code 2s}, {@code 1m}, or a bare number of milliseconds. */
    static long millis(String text) {
        String t = text.trim();
        if (t.endsWith("ms")) {
            return Long.parseLong(t.substring(0, t.length() - 2));
        }
        if (t.endsWith("s")) {
            return Math.round(Double.parseDouble(t.substring(0, t.length() - 1)) * 1000);
        }
        if (t.endsWith("m")) {
            return Math.round(Double.parseDouble(t.substring(0, t.length() - 1)) * 60_000);
        }
        return Long.parseLong(t);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void log(String message) {
        System.out.println(java.time.Instant.now() + "  INFO " + ProcessHandle.current().pid() + " --- [demo-app] " + message);
        System.out.flush();
    }
}
