import Foundation
import Testing
@testable import PushDeploy
#if canImport(Glibc)
import Glibc
#endif

/// A writer killed mid-write leaves the old record or the new one, never a torn one.
@Suite("History survives a killed writer")
struct CrashSafeHistoryTests {
    @Test func aKilledWriterNeverLeavesATornRecord() async throws {
        let folder = NSTemporaryDirectory() + "pushdeploy-crash-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/000001.json"
        var kills = 0
        var versionsSeen: Set<String> = []
        for round in 0..<25 {
            let writer = Process()
            writer.executableURL = URL(fileURLWithPath: Integration.executable)
            writer.arguments = ["_write-records", "--path", path]
            writer.standardOutput = FileHandle.nullDevice
            writer.standardError = FileHandle.nullDevice
            try writer.run()
            // Let it rewrite the record many times (a long and a short version in turn), then kill it without warning.
            try await Task.sleep(for: .milliseconds(40 + (round * 7) % 60))
            kill(writer.processIdentifier, SIGKILL)
            writer.waitUntilExit()
            #expect(writer.terminationReason == .uncaughtSignal)
            kills += 1
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            let record = try JSONDecoder.pushDeploy.decode(Deployment.self, from: data)
            #expect(record.id == 1)
            let version = try #require(record.version)
            #expect(version.hasPrefix("round-"))
            let round = Int(version.dropFirst(6)) ?? 0
            #expect(record.error == (round % 2 == 0 ? String(repeating: "long version ", count: 20_000) : "short version"))
            versionsSeen.insert(version)
        }
        #expect(kills == 25)
        #expect(versionsSeen.count > 1, "the writer must have got through several rewrites")
        // Only whole records and the writer's own abandoned temp files can be there; a reader skips the latter.
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(names.filter { !$0.hasPrefix(".") } == ["000001.json"])
    }
}
