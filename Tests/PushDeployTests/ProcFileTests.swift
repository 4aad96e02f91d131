import Foundation
import Testing
@testable import PushDeploy

@Suite("reading /proc")
struct ProcFileTests {
    @Test("a process's environment is read whole, past the first page Foundation's readers stop at")
    func aLongEnvironmentIsReadWhole() throws {
        let big = String(repeating: "x", count: 20_000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["30"]
        process.environment = ["PUSHDEPLOY_FIRST": "1", "PUSHDEPLOY_BIG": big, "PUSHDEPLOY_LAST": "marker"]
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        let environ = try #require(ProcFile.read("/proc/\(process.processIdentifier)/environ"))
        let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(variables.contains("PUSHDEPLOY_BIG=" + big))
        #expect(variables.contains("PUSHDEPLOY_LAST=marker"))
        #expect(ProcFile.read("/proc/\(Int32.max)/environ") == nil, "no such process")
    }
}
