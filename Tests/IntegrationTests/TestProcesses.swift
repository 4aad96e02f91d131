import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The live processes of the machine, read from `/proc`, to find and stop what a test started.
enum TestProcesses {
    /// One process; zombies and dead processes are never listed.
    struct Entry: Sendable {
        var pid: Int32
        /// Field 6 of `/proc/<pid>/stat`: a daemonized nginx master leads a session its workers stay in.
        var session: Int32
        var arguments: [String]
    }

    /// Every live process but the test process itself.
    static func all() -> [Entry] {
        let own = getpid()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name in
            guard let pid = Int32(name), pid != own,
                  let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // After the `)` of the command name: state, parent, group, session, …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, let state = fields[0].first, !"ZXx".contains(state), let session = Int32(fields[3]) else { return nil }
            let raw = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") ?? Data()
            return Entry(pid: pid, session: session, arguments: raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
        }
    }

    /// The processes with `text` in one of their arguments (a scratch folder, say).
    static func naming(_ text: String) -> [Entry] {
        all().filter { $0.arguments.contains { $0.contains(text) } }
    }

    /// Sends `signal` to what `select` picks, waits up to `grace` for all of it to be gone, then SIGKILLs what is left
    /// and waits again (up to five seconds); true when nothing is left.
    ///
    /// `select` is asked again on every poll, so a process that appears meanwhile (an nginx worker forked during a
    /// reload) is waited for too.
    @discardableResult
    static func stop(signal: Int32 = SIGTERM, grace: Duration = .seconds(5), _ select: () -> [Entry]) -> Bool {
        for entry in select() { kill(entry.pid, signal) }
        if waitUntilGone(within: grace, select) { return true }
        for entry in select() { kill(entry.pid, SIGKILL) }
        return waitUntilGone(within: .seconds(5), select)
    }

    private static func waitUntilGone(within limit: Duration, _ select: () -> [Entry]) -> Bool {
        let deadline = ContinuousClock.now + limit
        while !select().isEmpty {
            guard ContinuousClock.now < deadline else { return false }
            usleep(20_000)
        }
        return true
    }
}
