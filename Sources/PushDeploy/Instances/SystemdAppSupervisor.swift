import Foundation

/// Runs each instance as `pushdeploy-app@<port>.service` (`run.runner: systemd`), for production.
///
/// The unit (`systemd/pushdeploy-app@.service`) runs `/usr/bin/java $JAVA_OPTS -jar ${APP_JAR} --server.port=%i $APP_ARGS`
/// with `EnvironmentFile=<state_dir>/units/%i.env`; this writes that file, then asks systemctl to (re)start or stop the unit.
/// systemd owns the process, so an `Instance` has no pid; the environment file says which release runs on a port.
public struct SystemdAppSupervisor: AppSupervisor {
    public let stateDirectory: String
    public let releases: any ReleaseStore
    public let runner: any CommandRunner
    /// The systemctl program and leading options (`["systemctl", "--user"]` for a user manager).
    public var systemctl: [String] = ["systemctl"]
    public var timeout: Duration = .seconds(90)

    public init(stateDirectory: String, releases: any ReleaseStore, runner: any CommandRunner) {
        self.stateDirectory = stateDirectory
        self.releases = releases
        self.runner = runner
    }

    /// The unit that runs the instance on `port`.
    public static func unitName(port: Int) -> String { "pushdeploy-app@\(port).service" }

    /// The environment file the unit on `port` reads.
    public func environmentFilePath(port: Int) -> String { "\(stateDirectory)/units/\(port).env" }

    public func start(_ release: Release, app: AppConfig, port: Int, slot: String, log: any DeploymentLog) async throws -> Instance {
        try Task.checkCancellation()
        let launch = InstanceLaunch(release: release, run: app.run, port: port, slot: slot,
                                    jarPath: releases.jarPath(app: release.app, version: release.version))
        guard FileManager.default.fileExists(atPath: launch.jarPath) else {
            throw InstanceError.releaseMissing(version: release.version, path: launch.jarPath)
        }
        let file = try UnitEnvironment(launch: launch).fileText()
        let path = environmentFilePath(port: port)
        do {
            try AtomicFile.makeDirectory((path as NSString).deletingLastPathComponent)
            try AtomicFile.write(Data(file.utf8), to: path)
        } catch {
            throw InstanceError.file(operation: "write", path: path, reason: "\(error)")
        }
        // restart, not start: a unit left running on this port (by hand, or a crashed deployment) takes the new file too.
        try await systemctl(["restart", Self.unitName(port: port)], log: log)
        log.line("started \(release.version) on port \(port) as \(Self.unitName(port: port)) (journalctl -u \(Self.unitName(port: port)))")
        return Instance(port: port, slot: slot, version: release.version, commit: release.commit, startedAt: Date())
    }

    public func stop(_ instance: Instance, app: AppConfig, log: any DeploymentLog) async throws {
        let unit = Self.unitName(port: instance.port)
        if let recorded = recordedVersion(port: instance.port), recorded != instance.version {
            log.line("\(unit) now runs \(recorded), not \(instance.version): left running")
            return
        }
        // The unit's TimeoutStopSec (not run.stop_timeout) decides when systemd turns SIGTERM into SIGKILL.
        log.line("stopping \(instance.version) on port \(instance.port): systemctl stop \(unit)")
        try await systemctl(["stop", unit], log: log)
    }

    /// Units are named by port, so a unit started and not written down is found (and replaced) on its port: no search.
    public func stopStrays(app: AppConfig, known: [Instance], log: any DeploymentLog) async -> [String] { [] }

    public func isRunning(_ instance: Instance) async -> Bool {
        guard recordedVersion(port: instance.port) == instance.version else { return false }
        let command = Command(systemctl + ["is-active", "--quiet", Self.unitName(port: instance.port)])
        return (try? await runner.run(command, log: nil, timeout: timeout).status.isSuccess) ?? false
    }

    /// The instances whose unit is active and runs the recorded release (for re-adoption at start-up).
    public func adopt(_ instances: [Instance]) async -> [Instance] {
        var adopted: [Instance] = []
        for instance in instances where await isRunning(instance) { adopted.append(instance) }
        return adopted
    }

    /// `DEPLOY_VERSION` from the unit's environment file, or nil when there is none.
    private func recordedVersion(port: Int) -> String? {
        guard let text = try? String(contentsOfFile: environmentFilePath(port: port), encoding: .utf8) else { return nil }
        return UnitEnvironment.value(of: "DEPLOY_VERSION", in: text)
    }

    private func systemctl(_ arguments: [String], log: any DeploymentLog) async throws {
        let command = Command(systemctl + arguments)
        let result = try await runner.run(command, log: log, timeout: timeout)
        guard result.status.isSuccess else {
            throw InstanceError.systemctlFailed(command: command.description, status: result.status, outputTail: result.outputTail)
        }
    }
}

/// The variables of `<state_dir>/units/<port>.env`: `APP_JAR`, `JAVA_OPTS`, `APP_ARGS` and the app's environment.
struct UnitEnvironment: Equatable {
    var variables: [(name: String, value: String)]

    static func == (a: Self, b: Self) -> Bool { a.variables.elementsEqual(b.variables) { $0 == $1 } }

    /// Splits `run.command` (`java [jvm options] -jar {jar} [--server.port=…] [app arguments]`) into the unit's variables.
    init(launch: InstanceLaunch) throws(InstanceError) {
        let arguments = launch.arguments
        let command = launch.commandDescription
        guard let program = arguments.first, (program as NSString).lastPathComponent == "java" else {
            throw .unsupportedSystemdCommand(command: command, reason: "the unit runs /usr/bin/java, so run.command must start with java")
        }
        guard let jarFlag = arguments.firstIndex(of: "-jar"), jarFlag + 1 < arguments.count else {
            throw .unsupportedSystemdCommand(command: command, reason: "the unit runs `java … -jar ${APP_JAR} …`; run.command has no -jar")
        }
        guard arguments[jarFlag + 1] == launch.jarPath else {
            throw .unsupportedSystemdCommand(command: command, reason: "the argument after -jar must be {jar}")
        }
        var javaOptions = Array(arguments[1..<jarFlag])
        if let extra = launch.environment["JAVA_OPTS"] {
            javaOptions += extra.split(whereSeparator: \.isWhitespace).map(String.init)
        }
        // The unit adds --server.port=%i itself.
        let appArguments = arguments[(jarFlag + 2)...].filter { !$0.hasPrefix("--server.port=") }
        // systemd splits $JAVA_OPTS and $APP_ARGS at whitespace and honours no quotes there.
        if let spaced = (javaOptions + appArguments).first(where: { $0.contains(where: \.isWhitespace) || $0.isEmpty }) {
            throw .unsupportedSystemdCommand(command: command, reason: "argument \"\(spaced)\" is empty or holds whitespace, which $APP_ARGS cannot carry")
        }
        variables = [("APP_JAR", launch.jarPath), ("JAVA_OPTS", javaOptions.joined(separator: " ")),
                     ("APP_ARGS", appArguments.joined(separator: " "))]
        for name in launch.environment.keys.sorted() where name != "JAVA_OPTS" {
            guard name.first.map({ $0 == "_" || ($0.isASCII && $0.isLetter) }) == true,
                  name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
                throw .unsupportedSystemdCommand(command: command, reason: "\"\(name)\" cannot be an environment variable name")
            }
            variables.append((name, launch.environment[name]!))
        }
    }

    /// The file: one `NAME="value"` per line, escaped the way systemd reads double quotes.
    func fileText() throws(InstanceError) -> String {
        var text = "# Written by pushdeploy; replaced at every start of this port's unit.\n"
        for (name, value) in variables {
            guard !value.contains(where: \.isNewline) else {
                throw .unsupportedSystemdCommand(command: name, reason: "the value of \(name) holds a line break")
            }
            var escaped = ""
            for character in value {
                if "\\\"$`".contains(character) { escaped.append("\\") }
                escaped.append(character)
            }
            text += "\(name)=\"\(escaped)\"\n"
        }
        return text
    }

    /// The value of `name` in a file this type wrote.
    static func value(of name: String, in text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "=\"") && line.hasSuffix("\"") {
            var value = "", escaping = false
            for character in line.dropFirst(name.count + 2).dropLast() {
                if !escaping, character == "\\" { escaping = true; continue }
                escaping = false
                value.append(character)
            }
            return value
        }
        return nil
    }
}
