import Crypto
import Foundation
@testable import PushDeploy
#if canImport(Glibc)
import Glibc
#endif

/// Paths and processes the end-to-end tests share.
enum Integration {
    /// The repository root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().standardizedFileURL.path

    /// The `pushdeploy` executable under test: `$PUSHDEPLOY_EXECUTABLE` when set (`make test` runs every suite that
    /// starts the binary a second time against the release build, the one an operator installs), else the one built
    /// beside the tests.
    static var executable: String {
        if let chosen = ProcessInfo.processInfo.environment[executableVariable], !chosen.isEmpty { return chosen }
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = besideTests.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("pushdeploy").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return root + "/.build/debug/pushdeploy"
    }

    static let executableVariable = "PUSHDEPLOY_EXECUTABLE"

    /// A loopback port nobody listens on right now: the one free-port helper of the integration tests.
    static func freePort() -> Int { freePorts(1)[0] }

    /// `count` different loopback ports nobody listens on right now: each socket binds port 0 and reads back the port
    /// the kernel chose, and all stay open until the last is chosen, so no port comes twice.
    ///
    /// The ports come from the ephemeral range; Linux gives `bind` to port 0 the odd ones and outgoing connections the
    /// even ones first, so a test's own connections rarely take a port before the instance meant for it listens there.
    static func freePorts(_ count: Int) -> [Int] {
        // The demo's helper does exactly this; a test cannot go on without ports.
        try! DemoSetup.freeLoopbackPorts(count)
    }

    /// A socket listening on a free loopback port (backlog 16), for the tests' small servers; the caller closes it.
    static func listeningSocket() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = fd >= 0 && withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw ServerExited(log: "cannot listen on loopback: \(reason)")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A TCP connection to `port` on loopback, or -1 when it is refused; the caller closes it.
    static func connect(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
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

    /// Runs a program to the end and returns its status and output (stdout and stderr together).
    @discardableResult
    static func run(_ program: String, _ arguments: [String], environment: [String: String]? = nil,
                    in folder: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// A `pushdeploy serve` started by a test and always stopped.
final class RunningServer: Sendable {
    let process: Process
    let port: Int
    let logPath: String

    init(config: String, port: Int, logPath: String, environment: [String: String] = [:]) throws {
        self.port = port
        self.logPath = logPath
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Integration.executable)
        process.arguments = ["serve", "--config", config, "--port", String(port)]
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
    }

    /// Waits until `/healthz` answers.
    func waitUntilReady() async throws {
        for _ in 0..<200 {
            if let (status, _) = try? Integration.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/healthz"]),
               status == 0 {
                let (_, code) = try Integration.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/healthz"])
                if code == "200" { return }
            }
            guard process.isRunning else { throw ServerExited(log: (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerExited(log: "not ready after 10 s")
    }

    /// A server in `folder` with one app, `shop`, whose repository does not exist (a deployment fails at once at fetch),
    /// its token `token` and GitHub secret `secret`; ready when it returns. `settings`: more top-level keys (YAML lines).
    static func minimal(in folder: String, token: String = "test-token", settings: String = "") async throws -> RunningServer {
        let port = Integration.freePort()
        try FileManager.default.createDirectory(atPath: folder + "/nginx", withIntermediateDirectories: true)
        try "\(token)\n".write(toFile: folder + "/token", atomically: true, encoding: .utf8)
        try "secret\n".write(toFile: folder + "/secret", atomically: true, encoding: .utf8)
        try """
        listen: 127.0.0.1:\(port)
        state_dir: \(folder)/state
        token_file: token
        \(settings)
        apps:
          shop:
            repository: { url: \(folder)/missing, branch: main }
            webhooks: { github: { secret_file: secret } }
            strategy: blue-green
            slots: { blue: \(Integration.freePort()), green: \(Integration.freePort()) }
            nginx: { include_file: \(folder)/nginx/shop.inc }
        """.write(toFile: folder + "/pushdeploy.yml", atomically: true, encoding: .utf8)
        let server = try RunningServer(config: folder + "/pushdeploy.yml", port: port, logPath: folder + "/server.log")
        try await server.waitUntilReady()
        return server
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}

struct ServerExited: Error, CustomStringConvertible {
    var log: String
    var description: String { "pushdeploy serve exited: \(log)" }
}

extension Integration {
    /// Runs a program that daemonizes (nginx) with `posix_spawn` and `waitpid`, its output to `outputPath`.
    ///
    /// Not `Process`: the daemon keeps a pipe open forever, and `Process.waitUntilExit` was seen to leave the
    /// short-lived parent a zombie and never return.
    static func spawnAndWait(_ program: String, _ arguments: [String], outputPath: String) throws -> (status: Int32, output: String) {
        let pid = try spawn(program, arguments, outputPath: outputPath)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitCode, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    /// Stops a child started with ``spawn(_:_:outputPath:)``: SIGTERM, then SIGKILL after two seconds; always reaped.
    static func terminate(_ pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<200 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
    }

    /// Starts a program with `posix_spawn`, stdin from /dev/null and its output to `outputPath`, no other descriptor.
    static func spawn(_ program: String, _ arguments: [String], outputPath: String = "/dev/null") throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | (outputPath == "/dev/null" ? 0 : O_TRUNC), 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else: a daemon that inherits the sockets `Process` watches its children through would keep
        // every other test's `waitUntilExit` waiting forever.
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, nil, argv, environ)
        guard spawned == 0 else { throw ServerExited(log: "\(program): \(String(cString: strerror(spawned)))") }
        return pid
    }
}

extension Integration {
    /// POSTs `body` to `/hooks/github` on loopback `port` as GitHub delivers a push: signed with `secret` in
    /// X-Hub-Signature-256, a fresh X-GitHub-Delivery. Returns curl's exit status, the answer's body and its HTTP status.
    static func postGitHubPush(_ body: Data, secret: String, port: Int, scratch: String) throws -> (status: Int32, body: String, code: String) {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
        let file = scratch + "/push-\(UUID().uuidString).json"
        try body.write(to: URL(fileURLWithPath: file))
        let (status, output) = try run("/usr/bin/curl", [
            "-sS", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json", "-H", "X-GitHub-Event: push",
            "-H", "X-GitHub-Delivery: \(UUID().uuidString)",
            "-H", "X-Hub-Signature-256: sha256=" + mac.map { String(format: "%02x", $0) }.joined(),
            "--data-binary", "@\(file)", "http://127.0.0.1:\(port)/hooks/github",
        ])
        let answer = output.split(separator: "\n", omittingEmptySubsequences: false)
        return (status, answer.dropLast().joined(separator: "\n"), String(answer.last ?? ""))
    }
}
