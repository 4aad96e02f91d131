import Foundation

/// nginx's worker processes, read from `/proc`, so a switch can wait until no old worker can reach the old backend.
///
/// On a reload the master starts new workers and tells the old ones to stop accepting and finish what they
/// have. Until they exit, an old worker may still pass a request (a keep-alive one, or a connection it
/// accepted just before the signal) to the backend it was configured with. Stopping that backend earlier
/// would turn such a request into a 502, so the switch waits for them before it reports done.
enum NginxWorkers {
    /// One worker process, known by pid and start time.
    struct Worker: Hashable, Sendable {
        var pid: Int32
        var master: Int32
        var startTicks: UInt64
    }

    /// Every nginx worker on the machine now.
    static func snapshot() -> Set<Worker> {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var workers: Set<Worker> = []
        for entry in entries {
            guard let pid = Int32(entry), let cmdline = ProcFile.read("/proc/\(pid)/cmdline"),
                  cmdline.starts(with: Data("nginx: worker process".utf8)),
                  let stat = ProcStat(pid: pid), !stat.isDead else { continue }
            workers.insert(Worker(pid: pid, master: stat.parent, startTicks: stat.startTicks))
        }
        return workers
    }

    /// The workers of `before` whose master has started new workers since: the ones a reload retired.
    static func retired(since before: Set<Worker>) -> Set<Worker> {
        let reloaded = Set(snapshot().subtracting(before).map(\.master))
        return before.filter { reloaded.contains($0.master) }
    }

    /// Waits until every worker in `workers` has exited; false when some are still there at `timeout`.
    static func waitUntilGone(_ workers: Set<Worker>, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var left = workers
        while true {
            left = left.filter { worker in ProcStat(pid: worker.pid).map { $0.startTicks == worker.startTicks && !$0.isDead } ?? false }
            if left.isEmpty { return true }
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
