import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP request with a deadline and a cap on the body read: health checks, the nginx confirmation and the CLI.
///
/// All of them go through one AsyncHTTPClient on NIO's singleton event loops, the ones Hummingbird serves on.
/// It follows no redirects and uses no proxy, so an answer always comes from exactly the port asked, and it
/// does not retry a refused connection, so an app that is gone is reported at once. Every request asks for
/// `Connection: close`: a kept-alive connection could stay with an old nginx worker that still runs the
/// previous configuration, or outlive the instance it reached. Cancelling the task ends the request.
public enum HTTPProbe {
    /// The most of a body a probe keeps; a longer answer is cut there (`expect_body` and a version need only the start).
    public static let bodyLimit = 64 << 10

    /// What one request came back with.
    public struct Answer: Sendable {
        public var status: Int
        /// At most the limit asked for.
        public var body: [UInt8]
        /// True when the body went on past the limit and was cut there.
        public var cut: Bool
        /// The answer's headers, names in lowercase (the last one of a repeated name).
        public var headers: [String: String] = [:]
    }

    /// Held for the life of the process, so it is never shut down (AsyncHTTPClient asks that only of a client that deinits).
    private static let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)

    private static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, proxy: nil, decompression: .disabled)
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// GETs `http://<host>:<port><path>`; throws ``HealthError/request(url:reason:)`` when there is no answer.
    public static func get(host: String, port: Int, path: String, timeout: Duration,
                           headers: [String: String] = [:]) async throws -> (status: Int, body: String) {
        let answer = try await send("GET", url: url(host: host, port: port, path: path), timeout: timeout, headers: headers)
        return (answer.status, String(decoding: answer.body, as: UTF8.self))
    }

    /// GETs an `http://` or `https://` URL (such as `nginx.verify_url`).
    public static func get(url: String, timeout: Duration, headers: [String: String] = [:]) async throws -> (status: Int, body: String) {
        let answer = try await send("GET", url: url, timeout: timeout, headers: headers)
        return (answer.status, String(decoding: answer.body, as: UTF8.self))
    }

    /// Sends one request and reads the answer, keeping at most `bodyLimit` bytes of its body.
    ///
    /// The whole request, body included, ends at `timeout`; the reason of a ``HealthError/request(url:reason:)`` says
    /// what happened in the words of the log (`connect: Connection refused`, `timed out after 2s waiting for the answer`).
    public static func send(_ method: String, url: String, timeout: Duration, headers: [String: String] = [:],
                            body: [UInt8]? = nil, bodyLimit: Int = HTTPProbe.bodyLimit) async throws -> Answer {
        guard let scheme = URLComponents(string: url)?.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw HealthError.request(url: url, reason: "only http:// and https:// URLs can be requested")
        }
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        request.headers.add(name: "User-Agent", value: "pushdeploy")
        request.headers.add(name: "Connection", value: "close")
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { request.headers.replaceOrAdd(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            return try await withThrowingTaskGroup(of: Answer.self) { group in
                group.addTask { [request] in try await exchange(request, timeout: timeout, bodyLimit: bodyLimit) }
                // AsyncHTTPClient keeps its deadline only until the head has come; this one also ends a body that stalls.
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw HTTPClientError.deadlineExceeded
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch {
            try Task.checkCancellation()
            throw HealthError.request(url: url, reason: reason(for: error, timeout: timeout))
        }
    }

    /// Sends `request` and reads at most `bodyLimit` bytes of the answer's body.
    private static func exchange(_ request: HTTPClientRequest, timeout: Duration, bodyLimit: Int) async throws -> Answer {
        let response = try await client.execute(request, deadline: .now() + TimeAmount(timeout))
        var received = ByteBuffer()
        var cut = false
        for try await part in response.body {
            let room = bodyLimit - received.readableBytes
            received.writeImmutableBuffer(part.getSlice(at: part.readerIndex, length: min(room, part.readableBytes))!)
            // Leaving the loop drops the rest of the answer and its connection.
            if part.readableBytes > room { cut = true; break }
        }
        try Task.checkCancellation()
        var headers: [String: String] = [:]
        for (name, value) in response.headers { headers[name.lowercased()] = value }
        return Answer(status: Int(response.status.code), body: received.getBytes(at: received.readerIndex, length: received.readableBytes) ?? [],
                      cut: cut, headers: headers)
    }

    /// GETs `url` and hands over its body as it arrives, for as long as the server sends it (a stream of events).
    /// Throws ``HealthError/request(url:reason:)`` when no answer head comes within `timeout`, or for a non-2xx status.
    public static func stream(url: String, headers: [String: String], timeout: Duration) async throws -> (status: Int, body: AsyncThrowingStream<[UInt8], any Error>) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: "pushdeploy")
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { request.headers.replaceOrAdd(name: name, value: value) }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: .now() + TimeAmount(timeout))
        } catch {
            try Task.checkCancellation()
            throw HealthError.request(url: url, reason: reason(for: error, timeout: timeout))
        }
        let body = response.body
        let stream = AsyncThrowingStream<[UInt8], any Error> { continuation in
            let reader = Task {
                do {
                    for try await part in body { continuation.yield(Array(part.readableBytesView)) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
        return (Int(response.status.code), stream)
    }

    /// `http://host:port/path`, an IPv6 address in brackets.
    public static func url(host: String, port: Int, path: String) -> String {
        "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path.hasPrefix("/") ? path : "/" + path)"
    }

    /// A failed request in the words of a log line.
    static func reason(for error: any Error, timeout: Duration) -> String {
        switch error {
        case let error as HTTPClientError:
            switch error {
            case .deadlineExceeded, .readTimeout: "timed out after \(DurationParser.format(timeout)) waiting for the answer"
            case .connectTimeout: "timed out after \(DurationParser.format(timeout)) connecting"
            case .remoteConnectionClosed: "connection closed without a complete answer"
            case .cancelled: "cancelled"
            default: "\(error)"
            }
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { "connect: \(describe(first.error))" }
            else { "cannot resolve \(error.host): \((error.dnsAError ?? error.dnsAAAAError).map { "\($0)" } ?? "no address")" }
        case let error as IOError:
            // A reset or a broken pipe happens on an open connection; the other socket errors fail the connect.
            [ECONNRESET, EPIPE].contains(error.errnoCode) ? describe(error) : "connect: \(describe(error))"
        case let error as HTTPParserError:
            "malformed answer: \(error)"
        default:
            "\(error)"
        }
    }

    /// The system's words for a socket error (`Connection refused`), without NIO's decoration.
    private static func describe(_ error: any Error) -> String {
        guard let error = error as? IOError else { return "\(error)" }
        return String(cString: strerror(error.errnoCode))
    }
}
