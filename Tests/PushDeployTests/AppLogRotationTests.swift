import Foundation
import Testing
@testable import PushDeploy
#if canImport(Glibc)
import Glibc
#endif

@Suite("App log rotation")
struct AppLogRotationTests {
    @Test("past the size the log is copied aside and truncated; the app's O_APPEND descriptor writes on at the start; 3 kept")
    func rotatesWithoutTheAppNoticing() throws {
        let scratch = ScratchDirectory()
        let path = scratch.path + "/8081.log"
        // The app's side: one descriptor for its whole life, as the detached process gets it.
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        func appWrites(_ text: String) { _ = text.withCString { write(fd, $0, strlen($0)) } }

        for round in 1...5 {
            appWrites(String(repeating: "round \(round) line\n", count: 200))
            #expect(AppLogRotation.rotateIfNeeded(path, maxBytes: 1000))
            appWrites("after rotation \(round)\n")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "after rotation \(round)\n")
        }
        #expect(!AppLogRotation.rotateIfNeeded(path, maxBytes: 1000), "a small log is left alone")
        let rotated = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("8081.log.") }.sorted()
        #expect(rotated == ["8081.log.1", "8081.log.2", "8081.log.3"])
        #expect(try String(contentsOfFile: path + ".1", encoding: .utf8).hasPrefix("after rotation 4\nround 5 line\n"))
        #expect(try String(contentsOfFile: path + ".3", encoding: .utf8).hasPrefix("after rotation 2\nround 3 line\n"))
    }
}
