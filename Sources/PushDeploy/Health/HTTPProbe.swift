#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization

/// One plain HTTP/1.1 GET with a hard deadline, for health checks and for confirming a switch through nginx.
///
/// A small blocking socket client run on a dispatch queue, off the cooperative pool: no connection pool, no
/// redirects, no proxy settings, so an answer always comes from exactly the port asked, and a hung app costs
/// at most `timeout`. Cancelling the task shuts the socket down at once.
public enum HTTPProbe {
    /// The most of a body that is kept; a longer answer is cut there.
    public static let bodyLimit = 1 << 20

    private static let queue = DispatchQueue(label: "pushdeploy.http-probe", attributes: .concurrent)

    /// GETs `http://<host>:<port><path>` with `Connection: close`; throws ``HealthError/request(url:reason:)`` when there is no answer.
    public static func get(host: String, port: Int, path: String, timeout: Duration,
                           headers: [String: String] = [:]) async throws -> (status: Int, body: String) {
        try await send("GET", host: host, port: port, path: path, timeout: timeout, headers: headers)
    }

    /// Sends one request (`body` with its `Content-Length`) and reads the whole answer, up to `bodyLimit` bytes of body.
    public static func send(_ method: String, host: String, port: Int, path: String, timeout: Duration,
                            headers: [String: String] = [:], body: [UInt8]? = nil,
                            bodyLimit: Int = HTTPProbe.bodyLimit) async throws -> (status: Int, body: String) {
        try Task.checkCancellation()
        let request = ProbeRequest(method: method, host: host, port: port, path: path.hasPrefix("/") ? path : "/" + path,
                                   headers: headers, body: body)
        let connection = ProbeConnection()
        let result: Result<ProbeAnswer, HealthError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                queue.async {
                    do throws(HealthError) {
                        let answer = try connection.get(request, deadline: .now + timeout, timeout: timeout, bodyLimit: bodyLimit)
                        continuation.resume(returning: .success(answer))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
            }
        } onCancel: {
            connection.cancel()
        }
        try Task.checkCancellation()
        let answer = try result.get()
        return (answer.status, answer.body)
    }

    /// GETs a plain `http://host[:port]/path` URL (such as `nginx.verify_url`); https is not supported.
    public static func get(url: String, timeout: Duration, headers: [String: String] = [:]) async throws -> (status: Int, body: String) {
        guard let parts = URLComponents(string: url), parts.scheme?.lowercased() == "http", let host = parts.host, !host.isEmpty else {
            throw HealthError.request(url: url, reason: "only plain http://host[:port]/path URLs can be probed")
        }
        let path = (parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath) + (parts.percentEncodedQuery.map { "?" + $0 } ?? "")
        return try await get(host: host, port: parts.port ?? 80, path: path, timeout: timeout, headers: headers)
    }
}

struct ProbeRequest: Sendable {
    var method = "GET"
    var host: String
    var port: Int
    var path: String
    var headers: [String: String]
    var body: [UInt8]?

    var url: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)" }

    var bytes: [UInt8] {
        let name = host.contains(":") ? "[\(host)]" : host
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(port == 80 ? name : "\(name):\(port)")\r\n"
        text += "User-Agent: pushdeploy\r\nAccept: */*\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        if body != nil || method != "GET" { text += "Content-Length: \(body?.count ?? 0)\r\n" }
        return Array((text + "\r\n").utf8) + (body ?? [])
    }
}

struct ProbeAnswer: Sendable, Equatable {
    var status: Int
    var body: String
}

/// The socket of one probe, shared with the cancellation handler, which may shut it down from another thread.
private final class ProbeConnection: Sendable {
    private struct State {
        var fd: Int32 = -1
        var cancelled = false
    }

    private let state = Mutex(State())

    /// Shuts the socket down so a blocked `poll` returns; the lock keeps a closed (and reused) descriptor out of reach.
    func cancel() {
        state.withLock { state in
            state.cancelled = true
            if state.fd >= 0 { shutdown(state.fd, Int32(SHUT_RDWR)) }
        }
    }

    func get(_ request: ProbeRequest, deadline: ContinuousClock.Instant, timeout: Duration,
             bodyLimit: Int = HTTPProbe.bodyLimit) throws(HealthError) -> ProbeAnswer {
        func failure(_ reason: String) -> HealthError { .request(url: request.url, reason: reason) }
        let addresses = try resolve(request, failure)
        var reason = "no address for \(request.host)"
        for address in addresses {
            do throws(HealthError) {
                let fd = try open(address, deadline: deadline, timeout: timeout, failure)
                defer { closeSocket() }
                try send(request.bytes, on: fd, deadline: deadline, timeout: timeout, failure)
                return try receive(on: fd, deadline: deadline, timeout: timeout, bodyLimit: bodyLimit, failure)
            } catch let error {
                guard case let .request(_, why) = error, why.hasPrefix("connect: ") else { throw error }
                reason = why
            }
        }
        throw failure(reason)
    }

    private func resolve(_ request: ProbeRequest, _ failure: (String) -> HealthError) throws(HealthError) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let host = request.host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let result = getaddrinfo(host, String(request.port), &hints, &list)
        guard result == 0, let list else { throw failure("cannot resolve \(host): \(String(cString: gai_strerror(result)))") }
        defer { freeaddrinfo(list) }
        var addresses: [[UInt8]] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            if let address = current.pointee.ai_addr {
                addresses.append(Array(UnsafeRawBufferPointer(start: address, count: Int(current.pointee.ai_addrlen))))
            }
            entry = current.pointee.ai_next
        }
        return addresses
    }

    /// Connects a non-blocking socket to `address` (a raw `sockaddr`).
    private func open(_ address: [UInt8], deadline: ContinuousClock.Instant, timeout: Duration,
                      _ failure: (String) -> HealthError) throws(HealthError) -> Int32 {
        let family = address.withUnsafeBytes { $0.load(as: sockaddr.self).sa_family }
        let fd = socket(Int32(family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw failure("connect: socket: \(String(cString: strerror(errno)))") }
        let cancelled = state.withLock { state in
            state.fd = fd
            return state.cancelled
        }
        if cancelled { closeSocket(); throw failure("cancelled") }
        let result = address.withUnsafeBytes {
            connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(address.count))
        }
        if result != 0 {
            guard errno == EINPROGRESS else { let code = errno; closeSocket(); throw failure("connect: \(String(cString: strerror(code)))") }
            do throws(HealthError) {
                try wait(fd, for: Int16(POLLOUT), until: deadline, timeout: timeout, doing: "connecting", failure)
            } catch {
                closeSocket()
                throw error
            }
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
            if code != 0 { closeSocket(); throw failure("connect: \(String(cString: strerror(code)))") }
        }
        return fd
    }

    private func send(_ bytes: [UInt8], on fd: Int32, deadline: ContinuousClock.Instant, timeout: Duration,
                      _ failure: (String) -> HealthError) throws(HealthError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent > 0 { offset += sent; continue }
            guard sent < 0, errno == EAGAIN || errno == EINTR else { throw failure("send: \(String(cString: strerror(errno)))") }
            try wait(fd, for: Int16(POLLOUT), until: deadline, timeout: timeout, doing: "sending the request", failure)
        }
    }

    private func receive(on fd: Int32, deadline: ContinuousClock.Instant, timeout: Duration, bodyLimit: Int,
                         _ failure: (String) -> HealthError) throws(HealthError) -> ProbeAnswer {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
                if let answer = try HTTPResponseParser.parse(received, closed: false, limit: bodyLimit, failure) { return answer }
                continue
            }
            if count == 0 {
                if state.withLock({ $0.cancelled }) { throw failure("cancelled") }
                guard let answer = try HTTPResponseParser.parse(received, closed: true, limit: bodyLimit, failure) else {
                    throw failure(received.isEmpty ? "connection closed without an answer" : "connection closed in the middle of the answer")
                }
                return answer
            }
            guard errno == EAGAIN || errno == EINTR else { throw failure("recv: \(String(cString: strerror(errno)))") }
            try wait(fd, for: Int16(POLLIN), until: deadline, timeout: timeout, doing: "waiting for the answer", failure)
        }
    }

    private func wait(_ fd: Int32, for events: Int16, until deadline: ContinuousClock.Instant, timeout: Duration,
                      doing phase: String, _ failure: (String) -> HealthError) throws(HealthError) {
        while true {
            if state.withLock({ $0.cancelled }) { throw failure("cancelled") }
            let remaining = (deadline - .now).milliseconds
            guard remaining > 0 else { throw failure("timed out after \(DurationParser.format(timeout)) \(phase)") }
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let result = poll(&descriptor, 1, Int32(min(remaining, Int64(Int32.max))))
            if result > 0 { return }
            if result < 0, errno != EINTR { throw failure("poll: \(String(cString: strerror(errno)))") }
        }
    }

    private func closeSocket() {
        state.withLock { state in
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
        }
    }
}
