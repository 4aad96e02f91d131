import Foundation
import Testing
@testable import PushDeploy

@Suite("Atomic files")
struct AtomicFileTests {
    @Test func aFileIsReplacedWholeWithTheModeAskedFor() throws {
        let scratch = ScratchDirectory()
        let path = scratch.path + "/000001.json"
        try AtomicFile.write(Data("first".utf8), to: path)
        #expect(FileManager.default.contents(atPath: path) == Data("first".utf8))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o640 & ~Self.umask)
        try AtomicFile.write(Data("second".utf8), to: path, mode: 0o600)
        #expect(FileManager.default.contents(atPath: path) == Data("second".utf8))
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["000001.json"])
    }

    @Test func parentDirectories() {
        #expect(AtomicFile.parentDirectory(of: "/a/b/c.json") == "/a/b")
        #expect(AtomicFile.parentDirectory(of: "/c.json") == "/")
        #expect(AtomicFile.parentDirectory(of: "c.json") == ".")
        #expect(AtomicFile.temporaryPath(for: "/a/b/c.json").hasPrefix("/a/b/.c.json."))
        #expect(AtomicFile.temporaryPath(for: "c.json").hasPrefix("./.c.json."))
    }

    /// The process's umask, read without changing it (tests run side by side).
    private static var umask: Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Umask:") }
        return line.flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) } ?? 0o022
    }
}
