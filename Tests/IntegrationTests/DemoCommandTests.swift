import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `pushdeploy demo` for real: a first deployment served through nginx, and nothing left running afterwards.
@Suite("pushdeploy demo", .serialized)
struct DemoCommandTests {
    static let toolsPresent = ["/usr/bin/gradle", "/usr/bin/java", "/usr/sbin/nginx"].allSatisfy {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test(.enabled(if: toolsPresent, "needs gradle, java and nginx"), .timeLimit(.minutes(3)))
    func nonInteractiveDemoServesTheFirstDeploymentAndStopsEverything() throws {
        let scratch = try DemoScratch()
        defer { scratch.remove() }
        let (status, output) = try Integration.run(Integration.executable, ["demo", "--dir", scratch.work, "--exit-after-first-deploy"],
                                                   in: scratch.path)
        #expect(status == 0, "\(output)")
        let run = try DemoOutput(output)
        #expect(run.served.range(of: #"^demo-app 1\.0\.1-SNAPSHOT-\d{14}$"#, options: .regularExpression) != nil, "\(output)")
        #expect(output.contains("deployment 1 succeeded"))
        #expect(output.contains("stopped nginx (pid \(run.nginxPID))"), "\(output)")
        Self.expectNothingLeft(run, work: scratch.work, output: output)
    }

    @Test(.enabled(if: toolsPresent, "needs gradle, java and nginx"), .timeLimit(.minutes(3)))
    func ctrlCStopsWhatTheInteractiveDemoStarted() async throws {
        let scratch = try DemoScratch()
        defer { scratch.remove() }
        let logPath = scratch.path + "/demo.out"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Integration.executable)
        process.arguments = ["demo", "--dir", scratch.work, "--stay"]
        process.currentDirectoryURL = URL(fileURLWithPath: scratch.path)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        func output() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        let deadline = ContinuousClock.now + .seconds(120)
        while !output().contains("Ctrl-C stops"), process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(output().contains("Ctrl-C stops"), "the demo did not get ready: \(output())")
        let run = try DemoOutput(output())
        // The next steps name this run's config; the CLI reaches the server through it.
        let status = try Integration.run(Integration.executable, ["status", "--config", scratch.work + "/pushdeploy.yml"])
        #expect(status.status == 0, "\(status.output)")
        #expect(status.output.contains(run.served.replacingOccurrences(of: "demo-app ", with: "")), "\(status.output)")

        process.interrupt()
        while process.isRunning, ContinuousClock.now < deadline + .seconds(30) {
            try await Task.sleep(for: .milliseconds(100))
        }
        try #require(!process.isRunning, "still running 30 s after SIGINT: \(output())")
        #expect(process.terminationStatus == 0, "\(output())")
        #expect(output().contains("stopped nginx (pid \(run.nginxPID))"), "\(output())")
        Self.expectNothingLeft(run, work: scratch.work, output: output())
    }

    /// No port of the run answers, nginx is gone, and no process runs from or names the work folder (JVMs, Gradle daemon).
    static func expectNothingLeft(_ run: DemoOutput, work: String, output: String) {
        for port in run.ports {
            #expect(!isListening(port), "port \(port) still answers after the demo ended:\n\(output)")
        }
        #expect(kill(run.nginxPID, 0) != 0 || !commandLine(run.nginxPID).contains(work), "nginx \(run.nginxPID) still runs")
        let left = processes(touching: work)
        #expect(left.isEmpty, "still running after the demo ended: \(left)")
    }

    /// Whether something accepts a TCP connection on 127.0.0.1:`port`.
    static func isListening(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    static func commandLine(_ pid: Int32) -> String {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
    }

    /// Live processes whose command line names `folder` or whose working folder is inside it.
    static func processes(touching folder: String) -> [String] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        return pids.compactMap { pid in
            guard pid != getpid() else { return nil }
            let line = commandLine(pid)
            guard !line.isEmpty else { return nil }  // a zombie or a kernel thread
            let cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) ?? ""
            return line.contains(folder) || cwd.hasPrefix(folder) ? "\(pid): \(line) (in \(cwd))" : nil
        }
    }
}

/// A scratch folder of one test, with the demo's work folder inside.
struct DemoScratch {
    let path = NSTemporaryDirectory() + "pushdeploy-demo-test-" + UUID().uuidString
    var work: String { path + "/demo" }

    init() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// What a demo run printed about itself: its ports, nginx's pid, what nginx served.
struct DemoOutput {
    var ports: [Int]
    var nginxPID: Int32
    var served: String

    init(_ output: String) throws {
        func capture(_ pattern: String) throws -> [String] {
            let expression = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
            guard let match = expression.firstMatch(in: output, range: NSRange(output.startIndex..., in: output)) else {
                throw DemoOutputMissing(pattern: pattern, output: output)
            }
            return (1..<match.numberOfRanges).compactMap { Range(match.range(at: $0), in: output).map { String(output[$0]) } }
        }
        let server = try capture(#"^  pushdeploy +http://127\.0\.0\.1:(\d+)"#)
        let nginx = try capture(#"^  nginx +http://127\.0\.0\.1:(\d+)/"#)
        let slots = try capture(#"^  app slots +blue 127\.0\.0\.1:(\d+), green 127\.0\.0\.1:(\d+)"#)
        ports = (server + nginx + slots).compactMap { Int($0) }
        nginxPID = Int32(try capture(#"nginx started \(pid (\d+)\)"#)[0]) ?? 0
        served = try capture(#"through nginx: curl http://127\.0\.0\.1:\d+/  ->  (.+)$"#)[0]
    }
}

struct DemoOutputMissing: Error, CustomStringConvertible {
    var pattern: String
    var output: String
    var description: String { "the demo's output has no line matching \(pattern):\n\(output)" }
}
