#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A process pushdeploy started in a session of its own, known by pid *and* start time so a reused pid is never taken for it.
struct DetachedProcess: Sendable, Equatable {
    let pid: Int32
    /// Field 22 of `/proc/<pid>/stat`: clock ticks since boot when the process started.
    let startTicks: UInt64

    /// Whether the process still runs.
    enum Status: Sendable, Equatable {
        case running
        /// Gone, a zombie, or the pid now belongs to another process; the status when pushdeploy could reap it.
        case gone(CommandStatus?)
    }

    /// Starts `launch` with `posix_spawn`: own session, default signal handling, stdin from /dev/null,
    /// stdout and stderr to `logFD`, no other inherited descriptors.
    static func spawn(_ launch: InstanceLaunch, port: Int, logFD: Int32) throws(InstanceError) -> DetachedProcess {
        guard let program = launch.arguments.first, !program.isEmpty else {
            throw .launchFailed(command: launch.commandDescription, port: port, reason: "run.command is empty")
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own session: neither a restart of pushdeploy nor a Ctrl-C in its terminal reaches the app.
        // Default dispositions and an empty mask: a SIGTERM ignored by pushdeploy's signal handling must not stay
        // ignored in the JVM (which then would not install its own handler, and never stop gracefully).
        let flags = Int32(posixSpawnSetSID) | Int32(POSIX_SPAWN_SETSIGDEF) | Int32(POSIX_SPAWN_SETSIGMASK)
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        guard let addChdir = GNUSpawnActions.addChdir, let addCloseFrom = GNUSpawnActions.addCloseFrom else {
            throw .launchFailed(command: launch.commandDescription, port: port,
                                reason: "this C library lacks posix_spawn_file_actions_addchdir_np/addclosefrom_np (glibc 2.34 or later needed)")
        }
        _ = addChdir(&actions, launch.workingDirectory)
        // The app lives for weeks: it must not keep pushdeploy's listening socket or any other descriptor open.
        _ = addCloseFrom(&actions, 3)

        let environment = ChildEnvironment.make(launch.environment).map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = withCStrings(launch.arguments) { argv in
            withCStrings(environment) { envp in
                // A bare name is looked up on PATH; a relative path resolves in the release folder.
                program.contains("/")
                    ? posix_spawn(&pid, program, &actions, &attributes, argv, envp)
                    : posix_spawnp(&pid, program, &actions, &attributes, argv, envp)
            }
        }
        guard result == 0 else {
            throw .launchFailed(command: launch.commandDescription, port: port, reason: String(cString: strerror(result)))
        }
        // The child is ours and not yet reaped, so its stat file is there even if it already exited.
        guard let stat = ProcStat(pid: pid) else {
            throw .launchFailed(command: launch.commandDescription, port: port, reason: "/proc/\(pid)/stat is unreadable")
        }
        return DetachedProcess(pid: pid, startTicks: stat.startTicks)
    }

    /// Running, or gone; a zombie child of pushdeploy is reaped on the way.
    func status() -> Status {
        guard let stat = ProcStat(pid: pid), stat.startTicks == startTicks else { return .gone(nil) }
        guard stat.isDead else { return .running }
        if let status = reap() { return .gone(status) }
        // The leader thread shows `Z` as soon as it ends, while the other threads may still run: a JVM in the
        // middle of exiting, or a program whose main thread returned. That process is not gone yet.
        return hasLiveThreads() ? .running : .gone(nil)
    }

    /// Sends `signal` to the process group the instance leads; false when nothing of it is left to signal.
    ///
    /// When the pid now belongs to another process, nothing is sent. When no process has the pid, what is left of
    /// the group (if anything) is still ours: the kernel does not hand out a pid that is still a group's id.
    @discardableResult
    func signalGroup(_ signal: Int32) -> Bool {
        if let stat = ProcStat(pid: pid), stat.startTicks != startTicks { return false }
        if kill(-pid, signal) == 0 { return true }
        if ProcStat(pid: pid)?.startTicks == startTicks { return kill(pid, signal) == 0 }
        return false
    }

    private func hasLiveThreads() -> Bool {
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return threads.contains { ProcStat(path: "/proc/\(pid)/task/\($0)/stat").map { !$0.isDead } ?? false }
    }

    /// Collects the exit status if the process is pushdeploy's own child (an adopted one is not).
    private func reap() -> CommandStatus? {
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        let signal = raw & 0x7f
        return signal == 0 ? .exited((raw >> 8) & 0xff) : .signalled(signal)
    }
}

/// The fields of `/proc/<pid>/stat` pushdeploy needs.
struct ProcStat: Sendable, Equatable {
    /// `R`, `S`, `D`, `T`, `Z` (zombie), `X` (dead), …
    var state: Character
    /// Field 4: the parent's pid.
    var parent: Int32
    var startTicks: UInt64

    /// A zombie or a dead process is not running, whatever its pid says.
    var isDead: Bool { state == "Z" || state == "X" || state == "x" }

    /// Reads the file; nil when no process has this pid.
    init?(pid: Int32) {
        guard pid > 0 else { return nil }
        self.init(path: "/proc/\(pid)/stat")
    }

    /// Reads a `stat` file (of a process or of one of its threads).
    init?(path: String) {
        guard let data = ProcFile.read(path) else { return nil }
        self.init(parsing: String(decoding: data, as: UTF8.self))
    }

    /// Parses the text after the last `)`, since the command name in parentheses may itself hold spaces and parentheses.
    init?(parsing text: String) {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
        guard fields.count > 19, let state = fields[0].first, let parent = Int32(fields[1]), let ticks = UInt64(fields[19]) else { return nil }
        self.state = state
        self.parent = parent
        startTicks = ticks
    }
}

/// `POSIX_SPAWN_SETSID` (glibc 2.26+); Swift's Glibc module does not import it because it is a `__USE_GNU` macro.
private let posixSpawnSetSID: Int32 = 0x80

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29) and `…_addclosefrom_np` (2.34), looked up at run time:
/// they are `__USE_GNU` declarations, which Swift's Glibc module does not import.
private enum GNUSpawnActions {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    static let addChdir: AddChdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }
    static let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: AddCloseFrom.self) }
}

/// Calls `body` with a NULL-terminated array of C strings that lives for the call.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return body(pointers)
}
