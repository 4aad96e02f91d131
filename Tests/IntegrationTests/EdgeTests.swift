import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// The HTTP edge of a running server: slow headers, oversized headers.
@Suite("The HTTP edge", .serialized)
struct EdgeTests {
    private func connect(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 { close(fd); return -1 }
        return fd
    }

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
            let fd = connect(server.port)
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
}
