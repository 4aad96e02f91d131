import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import PushDeploy

/// `HTTPProbe`, `NginxProbe` and `PushDeployClient` against tiny local servers that answer with scripted bytes.
@Suite(.serialized)
struct HTTPProbeTests {
    @Test("answers framed by Content-Length, by chunks or by the end of the connection")
    func framing() async throws {
        func get(_ answer: String) async throws -> (status: Int, body: String) {
            let server = try ScriptedHTTPServer(answer: answer)
            defer { server.stop() }
            return try await HTTPProbe.get(host: "127.0.0.1", port: server.port, path: "/", timeout: .seconds(2))
        }
        #expect(try await get("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"UP\"}") == (200, "{\"status\":\"UP\"}"))
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"sta\r\na;ext=1\r\ntus\":\"UP\"}\r\n0\r\n\r\n"
        #expect(try await get(chunked) == (200, "{\"status\":\"UP\"}"))
        #expect(try await get("HTTP/1.0 503 Service Unavailable\r\n\r\nDOWN") == (503, "DOWN"))
        #expect(try await get("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n") == (204, ""))
        await #expect(throws: HealthError.self) { try await get("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"sta") }
        await #expect(throws: HealthError.self) { try await get(String(chunked.dropLast(5))) }
        await #expect(throws: HealthError.self) { try await get("SSH-2.0-OpenSSH\r\n\r\n") }
    }

    @Test("the nginx probe reads status and body, plain, sized and chunked, and says why there is none")
    func nginxProbe() async throws {
        func get(_ answer: String) async throws -> NginxProbe.Outcome {
            let server = try ScriptedHTTPServer(answer: answer)
            defer { server.stop() }
            return await NginxProbe.get(NginxProbe.Target(host: "127.0.0.1", port: server.port, path: "/"), timeout: .seconds(2))
        }
        #expect(try await get("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\ndemo-app 1.2\n") == .answered(status: 200, body: "demo-app 1.2\n"))
        #expect(try await get("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcdEXTRA") == .answered(status: 200, body: "abcd"))
        #expect(try await get("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndemo-\r\n7;x=y\r\napp 1.2\r\n0\r\n\r\n")
            == .answered(status: 200, body: "demo-app 1.2"))
        #expect(try await get("HTTP/1.1 502 Bad Gateway\r\n\r\n<html>bad</html>") == .answered(status: 502, body: "<html>bad</html>"))
        #expect(try await get("") == .failed("connection closed without a complete answer"))
        let ssh = try await get("SSH-2.0-OpenSSH\r\n\r\n")
        guard case let .failed(reason) = ssh else { Issue.record("an SSH banner was taken for an answer: \(ssh)"); return }
        #expect(reason.hasPrefix("malformed answer"), "\(reason)")

        let closed = try freePort()
        #expect(await NginxProbe.get(NginxProbe.Target(host: "127.0.0.1", port: closed, path: "/"), timeout: .seconds(1))
            == .failed("connect: Connection refused"))
    }

    @Test("each nginx confirmation comes on a new connection")
    func newConnectionEachTime() async throws {
        let server = try ScriptedHTTPServer(answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ending: .keepOpen)
        defer { server.stop() }
        for _ in 0..<3 {
            #expect(await NginxProbe.get(NginxProbe.Target(host: "127.0.0.1", port: server.port, path: "/"), timeout: .seconds(2))
                == .answered(status: 200, body: "ok"))
        }
        #expect(server.connections == 3)
        #expect(server.requests.allSatisfy { $0.lowercased().contains("connection: close") })
    }

    @Test("a chunk size near Int.max is an error or a cut body, never a crash",
          arguments: ["7fffffffffffffff", "ffffffffffffffff", "10000000000000000"])
    func hugeChunkSize(size: String) async throws {
        let server = try ScriptedHTTPServer(answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nabc")
        defer { server.stop() }
        do {
            let answer = try await HTTPProbe.get(host: "127.0.0.1", port: server.port, path: "/", timeout: .seconds(2))
            #expect(answer.body.count <= HTTPProbe.bodyLimit)
        } catch let error as HealthError {
            guard case .request = error else { Issue.record("unexpected \(error)"); return }
        }
        let verdict = await HTTPHealthChecker().check(port: server.port, health: HealthConfig(interval: .seconds(1), startupTimeout: .seconds(5)))
        #expect(!verdict.healthy)
    }

    @Test("a body longer than 64 KiB is cut at 64 KiB for a probe")
    func bodyCut() async throws {
        let body = String(repeating: "0123456789abcdef", count: 16 * 1024)  // 256 KiB
        for framing in ["Content-Length: \(body.utf8.count)\r\n", ""] {
            let server = try ScriptedHTTPServer(answer: "HTTP/1.1 200 OK\r\n\(framing)\r\n\(body)")
            defer { server.stop() }
            let answer = try await HTTPProbe.send("GET", url: HTTPProbe.url(host: "127.0.0.1", port: server.port, path: "/"), timeout: .seconds(5))
            #expect(answer.status == 200 && answer.cut)
            #expect(answer.body.count == 64 * 1024)
            #expect(answer.body == Array(body.utf8.prefix(64 * 1024)))
        }
    }

    @Test("a server that accepts and never answers, or stops in the middle of the body, ends the request at its deadline")
    func deadline() async throws {
        for answer in ["", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"] {
            let server = try ScriptedHTTPServer(answer: answer, ending: .keepOpen)
            defer { server.stop() }
            let clock = ContinuousClock()
            let started = clock.now
            await #expect(throws: HealthError.request(url: "http://127.0.0.1:\(server.port)/x", reason: "timed out after 500ms waiting for the answer")) {
                try await HTTPProbe.get(host: "127.0.0.1", port: server.port, path: "/x", timeout: .milliseconds(500))
            }
            let took = clock.now - started
            #expect(took >= .milliseconds(450) && took < .milliseconds(1500), "\(took)")
        }
    }

    @Test("cancelling the task ends a hung request promptly")
    func cancellation() async throws {
        let server = try ScriptedHTTPServer(answer: "", ending: .keepOpen)
        defer { server.stop() }
        let task = Task { try await HTTPProbe.get(host: "127.0.0.1", port: server.port, path: "/", timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(300))
        let clock = ContinuousClock()
        let cancelled = clock.now
        task.cancel()
        let result = await task.result
        #expect(clock.now - cancelled < .milliseconds(500))
        guard case let .failure(error) = result else { Issue.record("the request did not fail"); return }
        #expect(error is CancellationError, "\(error)")
    }

    @Test("a redirect is not followed: the answer comes from exactly the port asked")
    func noRedirect() async throws {
        let elsewhere = try ScriptedHTTPServer(answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nUP")
        defer { elsewhere.stop() }
        let server = try ScriptedHTTPServer(answer: "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:\(elsewhere.port)/\r\nContent-Length: 0\r\n\r\n")
        defer { server.stop() }
        let answer = try await HTTPProbe.get(host: "127.0.0.1", port: server.port, path: "/", timeout: .seconds(2))
        #expect(answer == (302, ""))
        #expect(elsewhere.connections == 0)
    }

    @Test("the CLI client reports a refused connection clearly, reads an answer, and refuses one past its cap")
    func cliClient() async throws {
        let closed = try freePort()
        let refused = PushDeployClient(baseURL: try #require(URL(string: "http://127.0.0.1:\(closed)/")), token: nil)
        let error = await #expect(throws: ClientError.self) { try await refused.send("GET", "status") }
        #expect(error?.message == "cannot reach pushdeploy at http://127.0.0.1:\(closed)/: connect: Connection refused")

        let server = try ScriptedHTTPServer(answer: "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\":\"b c\"}")
        defer { server.stop() }
        let client = PushDeployClient(baseURL: try #require(URL(string: "http://127.0.0.1:\(server.port)/")), token: Secret("t0ken"))
        let (status, body) = try await client.send("POST", "apps/shop/deploy", json: ["ref": "main"])
        #expect(status == 200 && String(decoding: body, as: UTF8.self) == "{\"a\":\"b c\"}")
        let request = try #require(server.requests.first)
        #expect(request.hasPrefix("POST /apps/shop/deploy HTTP/1.1\r\n"))
        #expect(request.contains("Authorization: Bearer t0ken\r\n") || request.contains("authorization: Bearer t0ken\r\n"))

        let huge = try ScriptedHTTPServer(answer: "HTTP/1.1 200 OK\r\nContent-Length: \((64 << 20) + 1)\r\n\r\n", ending: .zeros((64 << 20) + 1))
        defer { huge.stop() }
        let capped = PushDeployClient(baseURL: try #require(URL(string: "http://127.0.0.1:\(huge.port)/")), token: nil)
        let tooLarge = await #expect(throws: ClientError.self) { try await capped.send("GET", "log") }
        #expect(tooLarge?.message == "GET log: the answer is larger than 64 MiB, more than the CLI reads")
    }

    /// A port nothing listens on: bound to find it, then closed.
    private func freePort() throws -> Int {
        let server = try ScriptedHTTPServer(answer: "")
        server.stop()
        return server.port
    }
}

/// A server on a free loopback port that reads each request head and answers with the same bytes.
///
/// Blocking sockets, a thread per connection; `stop()` shuts every socket down so the threads end.
final class ScriptedHTTPServer: Sendable {
    /// What happens after the answer is written.
    enum Ending: Sendable {
        /// Close the connection (the end of the body, when nothing else frames it).
        case close
        /// Keep the connection open and say nothing more until `stop()`.
        case keepOpen
        /// Write this many zero bytes, then close.
        case zeros(Int)
    }

    let port: Int
    private let listener: Int32
    private let answer: [UInt8]
    private let ending: Ending
    private struct State {
        var sockets: Set<Int32> = []
        var requests: [String] = []
        var connections = 0
        var stopped = false
    }
    private let state = Mutex(State())

    /// How many connections were accepted.
    var connections: Int { state.withLock { $0.connections } }
    /// The request heads read, in order.
    var requests: [String] { state.withLock { $0.requests } }

    init(answer: String, ending: Ending = .close) throws {
        self.answer = Array(answer.utf8)
        self.ending = ending
        (listener, port) = try Integration.listeningSocket()
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Stops accepting and shuts every open connection down.
    func stop() {
        state.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for socket in state.sockets { shutdown(socket, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        defer { close(listener) }
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else {
                if errno == EINTR { continue }
                return
            }
            let accepted = state.withLock { state in
                guard !state.stopped else { return false }
                state.sockets.insert(connection)
                state.connections += 1
                return true
            }
            guard accepted else { close(connection); return }
            Thread.detachNewThread { [self] in serve(connection) }
        }
    }

    private func serve(_ connection: Int32) {
        defer {
            state.withLock { _ = $0.sockets.remove(connection) }
            close(connection)
        }
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while head.firstRange(of: [13, 10, 13, 10]) == nil {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            head += buffer[0..<count]
        }
        state.withLock { $0.requests.append(String(decoding: head, as: UTF8.self)) }
        guard write(answer, to: connection) else { return }
        switch ending {
        case .close:
            shutdown(connection, Int32(SHUT_WR))
            // Drain until the client closes, so that the close never resets data it has not read yet.
            while buffer.withUnsafeMutableBytes({ recv(connection, $0.baseAddress, $0.count, 0) }) > 0 {}
        case .keepOpen:
            while buffer.withUnsafeMutableBytes({ recv(connection, $0.baseAddress, $0.count, 0) }) > 0 {}
        case let .zeros(count):
            let block = [UInt8](repeating: 0, count: 1 << 20)
            var left = count
            while left > 0, write(Array(block.prefix(left)), to: connection) { left -= min(left, block.count) }
        }
    }

    private func write(_ bytes: [UInt8], to connection: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(connection, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }
}

