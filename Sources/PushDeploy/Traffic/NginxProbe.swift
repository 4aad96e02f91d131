#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation

/// One HTTP/1.1 GET with `Connection: close` over a blocking socket: how the traffic switch asks nginx who answers now.
///
/// Each request opens a new connection on purpose: a kept-alive one could stay with an old nginx
/// worker that still runs the previous configuration. The socket calls block, so they run on a
/// Dispatch thread, never on the cooperative pool.
struct NginxProbe: Sendable {
    /// Where a probe goes, parsed once from the URL.
    struct Target: Sendable, Equatable, CustomStringConvertible {
        var host: String
        var port: Int
        /// Path and query, `/` at least.
        var path: String

        /// Parses an `http://` URL; throws the reason it cannot be probed.
        init(url: String) throws(TrafficError) {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
                throw .invalidVerifyURL(url: url, reason: "not a URL")
            }
            guard scheme == "http" else {
                throw .invalidVerifyURL(url: url, reason: "only http:// is supported (point it at nginx on loopback)")
            }
            guard let host = components.host, !host.isEmpty else { throw .invalidVerifyURL(url: url, reason: "no host") }
            self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
            port = components.port ?? 80
            let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
            path = (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath) + query
        }

        init(host: String, port: Int, path: String) {
            self.host = host
            self.port = port
            self.path = path.hasPrefix("/") ? path : "/" + path
        }

        /// The `Host` header: the name as written, with the port unless it is 80.
        var hostHeader: String {
            let name = host.contains(":") ? "[\(host)]" : host
            return port == 80 ? name : "\(name):\(port)"
        }

        var description: String { "http://\(hostHeader)\(path)" }
    }

    /// What one request came back with.
    enum Outcome: Sendable, Equatable {
        case answered(status: Int, body: String)
        case failed(String)

        /// A short form for a log line or an error: `200 "demo-app 1.2"`, `connection refused`.
        var summary: String {
            switch self {
            case let .answered(status, body):
                let flat = body.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
                return "\(status) \"\(flat.count > 120 ? flat.prefix(120) + "…" : flat)\""
            case let .failed(reason):
                return reason
            }
        }
    }

    /// The most of an answer read; enough for any page that names a version.
    private static let maxBytes = 256 * 1024

    /// GETs `target`, giving up after `timeout`.
    static func get(_ target: Target, timeout: Duration) async -> Outcome {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: blockingGet(target, deadline: ContinuousClock.now + timeout))
            }
        }
    }

    private static func blockingGet(_ target: Target, deadline: ContinuousClock.Instant) -> Outcome {
        let fd: Int32
        switch connect(to: target, deadline: deadline) {
        case let .success(descriptor): fd = descriptor
        case let .failure(failure): return .failed(failure.reason)
        }
        defer { close(fd) }
        let request = "GET \(target.path) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nUser-Agent: pushdeploy\r\n"
            + "Accept: */*\r\nConnection: close\r\n\r\n"
        var bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .failed("timed out sending the request") }
            let count = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failed("send: \(String(cString: strerror(errno)))")
            }
            sent += count
        }
        var response: [UInt8] = []
        bytes = [UInt8](repeating: 0, count: 16 * 1024)
        while response.count < maxBytes {
            guard wait(fd, for: Int16(POLLIN), until: deadline) else {
                return response.isEmpty ? .failed("timed out waiting for an answer") : parse(response)
            }
            let count = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failed("recv: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            response.append(contentsOf: bytes[0..<count])
        }
        return parse(response)
    }

    /// A non-blocking connect to the first address that takes it, bounded by `deadline`.
    private static func connect(to target: Target, deadline: ContinuousClock.Instant) -> Result<Int32, ProbeFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(ProbeFailure("cannot resolve \(target.host): \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address for \(target.host)"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry?.pointee {
            entry = info.ai_next
            let fd = socket(info.ai_family, info.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.ai_protocol)
            guard fd >= 0 else { lastError = "socket: \(String(cString: strerror(errno)))"; continue }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if Glibc.connect(fd, info.ai_addr, info.ai_addrlen) == 0 { return .success(fd) }
            if errno == EINPROGRESS {
                if wait(fd, for: Int16(POLLOUT), until: deadline) {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    if error == 0 { return .success(fd) }
                    lastError = "connect to \(target.hostHeader): \(String(cString: strerror(error)))"
                } else {
                    lastError = "connect to \(target.hostHeader): timed out"
                }
            } else {
                lastError = "connect to \(target.hostHeader): \(String(cString: strerror(errno)))"
            }
            close(fd)
        }
        return .failure(ProbeFailure(lastError))
    }

    /// Waits until `fd` is ready for `events`; false when `deadline` passes first.
    private static func wait(_ fd: Int32, for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = (deadline - ContinuousClock.now).milliseconds
            guard left > 0 else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, Int32(min(left, Int64(Int32.max))))
            if ready > 0 { return true }
            if ready == 0 { return false }
            if errno != EINTR { return true }  // let the following call report the error
        }
    }

    /// Status and body of a raw answer; a chunked body is put back together.
    static func parse(_ response: [UInt8]) -> Outcome {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = response.firstRange(of: separator) else {
            return response.isEmpty ? .failed("the connection closed without an answer") : .failed("an incomplete answer")
        }
        let head = String(decoding: response[..<end.lowerBound], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let statusWords = lines[0].split(separator: " ")
        guard statusWords.count >= 2, statusWords[0].hasPrefix("HTTP/"), let status = Int(statusWords[1]) else {
            return .failed("not an HTTP answer: \(lines[0].prefix(80))")
        }
        var body = Array(response[end.upperBound...])
        let headers = lines.dropFirst().map { $0.lowercased() }
        if headers.contains(where: { $0.hasPrefix("transfer-encoding:") && $0.contains("chunked") }) {
            body = dechunked(body)
        } else if let length = headers.first(where: { $0.hasPrefix("content-length:") })
            .flatMap({ Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }), length < body.count {
            body = Array(body[..<length])
        }
        return .answered(status: status, body: String(decoding: body, as: UTF8.self))
    }

    /// The data of a chunked body, as much of it as arrived.
    private static func dechunked(_ body: [UInt8]) -> [UInt8] {
        var data: [UInt8] = []
        var index = 0
        while index < body.count {
            guard let lineEnd = body[index...].firstRange(of: [13, 10]) else { break }
            let sizeText = String(decoding: body[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            data.append(contentsOf: body[start..<min(start + size, body.count)])
            index = start + size + 2
        }
        return data
    }
}

/// A reason a probe could not connect, as an `Error` so that it fits in a `Result`.
private struct ProbeFailure: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}
