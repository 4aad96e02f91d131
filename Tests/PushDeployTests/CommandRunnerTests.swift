import Foundation
import Testing
@testable import PushDeploy

@Suite("CommandRunner")
struct CommandRunnerTests {
    let runner = SubprocessCommandRunner(gracePeriod: .milliseconds(500), tailLines: 5)

    @Test("arguments reach the program as they are, without a shell")
    func noShell() async throws {
        let result = try await runner.run(Command(["printf", "%s\\n", "a b; echo injected $HOME"]))
        #expect(result.status == .exited(0))
        #expect(result.outputTail == ["a b; echo injected $HOME"])
    }

    @Test("a command gets PATH, HOME, LANG and its own variables, never the server's other variables")
    func serverEnvironmentStaysOut() async throws {
        setenv("PUSHDEPLOY_TEST_SERVER_SECRET", "s3cr3t-from-the-server", 1)
        defer { unsetenv("PUSHDEPLOY_TEST_SERVER_SECRET") }
        let result = try await runner.run(Command(["/usr/bin/env"], environment: ["DEPLOY_APP": "shop"]))
        let names = Set(result.outputTail.compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
        #expect(!result.outputTail.contains { $0.contains("s3cr3t-from-the-server") })
        #expect(names.isSubset(of: Set(ChildEnvironment.passedThrough + ["DEPLOY_APP"])), "\(names)")
        #expect(names.contains("PATH") && names.contains("DEPLOY_APP"))
    }

    @Test("working directory and environment are applied on top of the child environment")
    func environment() async throws {
        let directory = try RunnerScratchFolder()
        let command = Command(["sh", "-c", "pwd; echo \"$PUSHDEPLOY_TEST_VALUE\"; test -n \"$PATH\" && echo path-kept"],
                              workingDirectory: directory.path, environment: ["PUSHDEPLOY_TEST_VALUE": "hello world"])
        let result = try await runner.run(command)
        #expect(result.outputTail == [directory.resolvedPath, "hello world", "path-kept"])
    }

    @Test("a relative program path is taken from the working directory")
    func relativeProgram() async throws {
        let directory = try RunnerScratchFolder()
        let script = "\(directory.path)/gradlew"
        try "#!/bin/sh\necho wrapper \"$@\"\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let result = try await runner.run(Command(["./gradlew", "bootJar"], workingDirectory: directory.path))
        #expect(result.outputTail == ["wrapper bootJar"])
    }

    @Test("a failing command is a result with its status and the last lines of stdout and stderr")
    func failureTail() async throws {
        let command = Command(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo out $i; done; echo err >&2; exit 3"])
        let log = MemoryDeploymentLog()
        let result = try await runner.run(command, log: log, timeout: .seconds(30))
        #expect(result.status == .exited(3))
        #expect(result.outputTail == ["out 5", "out 6", "out 7", "out 8", "err"])
        #expect(log.text.contains("out 1\n"))
        #expect(throws: CommandError.failed(command: command.description, status: .exited(3), outputTail: result.outputTail)) {
            try result.checked(command)
        }
    }

    @Test("a missing program is a launch failure")
    func missingProgram() async throws {
        await #expect {
            _ = try await runner.run(Command(["pushdeploy-no-such-program-\(UInt32.random(in: 0 ... .max))"]))
        } throws: { error in
            if case .launchFailed = error as? CommandError { return true }
            return false
        }
        await #expect(throws: CommandError.emptyCommand) { try await runner.run(Command([])) }
    }

    @Test("output reaches the log while the command still runs")
    func streaming() async throws {
        let log = MemoryDeploymentLog()
        let running = Task { try await runner.run(Command(["sh", "-c", "echo first; sleep 3; echo second"]), log: log, timeout: nil) }
        defer { running.cancel() }
        let deadline = ContinuousClock.now + .seconds(2)
        while !log.text.contains("first"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(log.text == "first\n")
        let result = try await running.value
        #expect(result.outputTail == ["first", "second"])
    }

    @Test("a timeout ends the whole process tree, even children that ignore SIGTERM")
    func timeoutKillsTree() async throws {
        let marker = Self.marker()
        // The inner shell ignores SIGTERM, and so does the sleep it starts: only the group SIGKILL ends them.
        let command = Command(["sh", "-c", "sleep \(marker) & sh -c 'trap \"\" TERM; sleep \(marker)' & echo started; wait"])
        let started = ContinuousClock.now
        await #expect {
            _ = try await runner.run(command, log: nil, timeout: .seconds(1))
        } throws: { error in
            guard case let .timedOut(_, after, tail) = error as? CommandError else { return false }
            return after == .seconds(1) && tail == ["started"]
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(try await Self.processes(matching: marker).isEmpty)
    }

    @Test("cancelling the task ends the process tree and throws CancellationError")
    func cancellation() async throws {
        let marker = Self.marker()
        let log = MemoryDeploymentLog()
        let running = Task {
            try await runner.run(Command(["sh", "-c", "sleep \(marker) & echo started; wait"]), log: log, timeout: .seconds(60))
        }
        while !log.text.contains("started") { try await Task.sleep(for: .milliseconds(20)) }
        running.cancel()
        await #expect(throws: CancellationError.self) { try await running.value }
        #expect(try await Self.processes(matching: marker).isEmpty)
    }

    @Test("a grandchild that keeps the output pipe open does not hold the result back")
    func lingeringGrandchild() async throws {
        let marker = Self.marker(seconds: 4)
        let started = ContinuousClock.now
        let result = try await runner.run(Command(["sh", "-c", "sleep \(marker) & echo done"]), log: nil, timeout: .seconds(30))
        #expect(result.outputTail == ["done"])
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    @Test("the in-memory runner records commands and answers from its script")
    func memoryRunner() async throws {
        let memory = MemoryCommandRunner { command in
            command.program == "nginx" ? .init(status: .exited(1), output: ["nginx: bad config"]) : .init()
        }
        let log = MemoryDeploymentLog()
        let test = try await memory.run(Command(["nginx", "-t"]), log: log, timeout: .seconds(5))
        let reload = try await memory.run(Command(["nginx", "-s", "reload"]))
        let other = try await memory.run(Command(["true"]))
        #expect(test.status == .exited(1) && reload.status == .exited(1) && other.status.isSuccess)
        #expect(await memory.commands.map(\.arguments) == [["nginx", "-t"], ["nginx", "-s", "reload"], ["true"]])
        #expect(log.text == "nginx: bad config\n")
    }

    @Test("statuses and commands read well in errors")
    func descriptions() {
        #expect(CommandStatus.signalled(SIGKILL).description == "killed by signal 9 (SIGKILL)")
        #expect(Command(["sh", "-c", "echo 'hi'"]).description == #"sh -c 'echo '\''hi'\'''"#)
        #expect(CommandError.timedOut(command: "gradle bootJar", after: .seconds(900), outputTail: ["> Task :compileJava"]).description
            == "gradle bootJar timed out after 15m and was stopped; last output:\n  > Task :compileJava")
    }

    /// A `sleep` argument unique to one test, so its processes can be found in `/proc`.
    static func marker(seconds: Int = 300) -> String {
        "\(seconds).\(UInt32.random(in: 100_000 ... 999_999))"
    }

    /// Live (not zombie) processes whose command line contains `text`, after giving the kernel a moment.
    static func processes(matching text: String) async throws -> [Int32] {
        var found: [Int32] = []
        for _ in 0 ..< 20 {
            found = RunnerProcessTable.live().filter { $0.commandLine.contains(text) }.map(\.pid)
            if found.isEmpty { return [] }
            try await Task.sleep(for: .milliseconds(100))
        }
        return found
    }
}

/// The processes in `/proc`, for tests that check nothing was left running.
private enum RunnerProcessTable {
    struct Entry {
        var pid: Int32
        var commandLine: String
        var workingDirectory: String?
    }

    /// Every process that is not a zombie.
    static func live() -> [Entry] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> Entry? in
            guard let pid = Int32(name),
                  let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let state = stat[stat.index(close, offsetBy: 2)...].first
            guard state != "Z", state != "X" else { return nil }
            let raw = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") ?? Data()
            let commandLine = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            let directory = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(name)/cwd")
            return Entry(pid: pid, commandLine: commandLine, workingDirectory: directory)
        }
    }
}

/// A fresh folder under the system temp folder, removed when the test ends.
private final class RunnerScratchFolder: Sendable {
    let path: String

    init(_ name: String = "test") throws {
        path = NSTemporaryDirectory() + "pushdeploy-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// The path with symlinks resolved, as `pwd` prints it.
    var resolvedPath: String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @Test("a logged command line masks the values of arguments named password, secret or token")
    func secretsAreMaskedInCommandLines() {
        let command = Command(["java", "-Ddb.password=hunter2", "--api-token", "abc123", "--spring.datasource.password=p@ss", "-jar", "app.jar",
                               "--secret-key=s", "--port=8080"])
        #expect(command.description == "java -Ddb.password=*** --api-token *** --spring.datasource.password=*** -jar app.jar --secret-key=*** --port=8080")
    }
}
