import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// The HTTP edge of a running server: slow headers, oversized headers, the cap on connections.
@Suite("The HTTP edge", .serialized)
struct EdgeTests {
    private func send(_ fd: Int32, _ text: String) {
        _ = text.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// True when the server has closed `fd` (a read returns end of file or an error, without waiting).
    private func isClosed(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    @Test("500 connections that never finish their headers are all closed within ~30 s; /healthz answers throughout",
          .timeLimit(.minutes(2)))
    func slowHeadersAreClosed() async throws {
        let folder = NSTemporaryDirectory() + "pushdeploy-edge-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try await RunningServer.minimal(in: folder)
        defer { server.stop() }
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        for index in 0..<500 {
            let fd = Integration.connect(server.port)
            #expect(fd >= 0, "connection \(index) refused")
            if fd >= 0 {
                send(fd, "POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                sockets.append(fd)
            }
        }
        let started = ContinuousClock.now
        var healthFailures = 0
        var allClosed = false
        while ContinuousClock.now - started < .seconds(45) {
            // One of them trickles a byte now and then, as a slowloris client does: it is closed all the same.
            if let first = sockets.first { send(first, "a") }
            if (try? Integration.run("/usr/bin/curl", ["-sf", "-m", "2", "http://127.0.0.1:\(server.port)/healthz"]))?.status != 0 {
                healthFailures += 1
            }
            if sockets.allSatisfy(isClosed) { allClosed = true; break }
            try await Task.sleep(for: .seconds(1))
        }
        let took = ContinuousClock.now - started
        #expect(allClosed, "\(sockets.filter { !isClosed($0) }.count) slow connections still open after \(took)")
        #expect(took >= .seconds(25), "closed after \(took): sooner than the 30 s deadline")
        #expect(healthFailures == 0, "/healthz failed \(healthFailures) times during the flood")
    }

    @Test("header fields past 16 KiB are answered 431")
    func oversizedHeadersAre431() async throws {
        let folder = NSTemporaryDirectory() + "pushdeploy-edge-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try await RunningServer.minimal(in: folder)
        defer { server.stop() }
        let (_, code) = try Integration.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                                                              "X-Big: \(String(repeating: "b", count: 40_000))",
                                                              "http://127.0.0.1:\(server.port)/healthz"])
        #expect(code == "431")
        let (_, fine) = try Integration.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.port)/healthz"])
        #expect(fine == "200")
    }

    /// Waits up to `limit` for the server to close `fd`; true when it did (end of file or a reset).
    private func closedByServer(_ fd: Int32, within limit: Duration) -> Bool {
        var timeout = timeval(tv_sec: Int(limit.components.seconds), tv_usec: Int(limit.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 || (count < 0 && errno == ECONNRESET) { return true }
            if count < 0 && errno == EINTR { continue }
            // Data (an answer, which a refused connection never gets) or the time-out.
            return false
        }
    }

    /// Sends `GET /healthz` on `fd` and reads the whole answer (its head and `Content-Length` bytes); returns its status line.
    private func healthOnOpenConnection(_ fd: Int32) -> String? {
        send(fd, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = text[..<end.lowerBound]
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.count - text.utf8.distance(from: text.startIndex, to: end.upperBound) >= length {
                    return head.split(separator: "\r\n").first.map(String.init)
                }
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return nil }
            received += buffer[0..<count]
        }
    }

    private func healthStatus(_ port: Int) -> String {
        (try? Integration.run("/usr/bin/curl", ["-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/healthz"]))?.output ?? "curl failed"
    }

    @Test("max_connections: connections past the cap are closed at once, the server stays up, and /healthz answers once places are free",
          .timeLimit(.minutes(2)))
    func connectionsPastTheCapAreClosed() async throws {
        let cap = 8
        let folder = NSTemporaryDirectory() + "pushdeploy-edge-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try await RunningServer.minimal(in: folder, settings: "max_connections: \(cap)")
        defer { server.stop() }
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        // Keep-alive connections that were answered: the server counts each of them until it closes.
        for index in 0..<cap {
            let fd = Integration.connect(server.port)
            try #require(fd >= 0, "connection \(index) refused")
            held.append(fd)
            #expect(healthOnOpenConnection(fd) == "HTTP/1.1 200 OK", "connection \(index) within the cap")
        }

        // 100 more: each is accepted by the kernel and closed by the server before it answers anything.
        let started = ContinuousClock.now
        var notClosed = 0
        for _ in 0..<100 {
            let fd = Integration.connect(server.port)
            guard fd >= 0 else { continue }
            send(fd, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            if !closedByServer(fd, within: .seconds(2)) { notClosed += 1 }
            close(fd)
        }
        let took = ContinuousClock.now - started
        #expect(notClosed == 0, "\(notClosed) connections past the cap were not closed within 2 s (or were answered)")
        #expect(took < .seconds(10), "closing 100 connections past the cap took \(took)")
        #expect(healthStatus(server.port) == "000", "a new client got an answer while every place was taken")
        #expect(server.process.isRunning, "the server fell over")
        // The connections within the cap still work.
        #expect(healthOnOpenConnection(held[0]) == "HTTP/1.1 200 OK")

        held.forEach { close($0) }
        held = []
        var status = healthStatus(server.port)
        let freed = ContinuousClock.now
        while status != "200", ContinuousClock.now - freed < .seconds(5) {
            try await Task.sleep(for: .milliseconds(50))
            status = healthStatus(server.port)
        }
        #expect(status == "200", "/healthz after the held connections closed")
        #expect(server.process.isRunning)
    }
}
