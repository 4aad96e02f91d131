import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

@Suite("reading /proc")
struct ProcFileTests {
    @Test("a process's environment is read whole, past the first page Foundation's readers stop at")
    func aLongEnvironmentIsReadWhole() async throws {
        let big = String(repeating: "x", count: 20_000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["30"]
        process.environment = ["PUSHDEPLOY_FIRST": "1", "PUSHDEPLOY_BIG": big, "PUSHDEPLOY_LAST": "marker"]
        try process.run()
        let pid = process.processIdentifier
        defer { kill(pid, SIGKILL); process.waitUntilExit() }
        // Until the child has exec'd sleep, its environ is not the one given.
        let deadline = ContinuousClock.now + .seconds(5)
        var read = ProcFile.read("/proc/\(pid)/environ")
        while read.map({ $0.range(of: Data("PUSHDEPLOY_FIRST=1".utf8)) == nil }) ?? true, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
            read = ProcFile.read("/proc/\(pid)/environ")
        }
        let environ = try #require(read)
        let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(variables.contains("PUSHDEPLOY_BIG=" + big))
        #expect(variables.contains("PUSHDEPLOY_LAST=marker"))
        #expect(ProcFile.read("/proc/\(Int32.max)/environ") == nil, "no such process")
    }
}
