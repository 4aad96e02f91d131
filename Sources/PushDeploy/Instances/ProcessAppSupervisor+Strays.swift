#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension ProcessAppSupervisor {
    /// The environment variable that marks every instance this supervisor starts: `<state_dir>#<app>#<port>`.
    static let markerVariable = "PUSHDEPLOY_INSTANCE"

    /// The marker of an instance of `app` on `port`.
    func marker(app: String, port: Int) -> String { "\(stateDirectory)#\(app)#\(port)" }

    /// Stops the instances of `app` that run but are in no record: pushdeploy was killed between starting one and
    /// writing it down. Found by their marker in `/proc/<pid>/environ`; only session leaders (an instance runs in a
    /// session of its own), so the children of a wrapper script are not counted twice. Returns one line per stop.
    public func stopStrays(app: AppConfig, known: [Instance], log: any DeploymentLog) async -> [String] {
        let prefix = "\(Self.markerVariable)=\(stateDirectory)#\(app.name)#"
        let knownPIDs = Set(known.compactMap(\.pid))
        var notes: [String] = []
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid(), !knownPIDs.contains(pid), getsid(pid) == pid,
                  let port = Self.markedPort(pid: pid, prefix: prefix), let stat = ProcStat(pid: pid), !stat.isDead else { continue }
            let stray = Instance(port: port, slot: "stray", version: "unrecorded", commit: "", pid: pid, processStartTicks: stat.startTicks)
            do {
                try await stop(stray, app: app, log: log)
                notes.append("stopped an unrecorded instance on port \(port) (pid \(pid)), left by an interrupted deployment")
            } catch {
                notes.append("could not stop the unrecorded instance on port \(port) (pid \(pid)): \(error)")
            }
        }
        return notes
    }

    /// The port in the marker of process `pid`, when its environment carries one with `prefix`.
    private static func markedPort(pid: Int32, prefix: String) -> Int? {
        guard let data = ProcFile.read("/proc/\(pid)/environ") else { return nil }
        for variable in data.split(separator: 0) where variable.starts(with: prefix.utf8) {
            return Int(String(decoding: variable.dropFirst(prefix.utf8.count), as: UTF8.self))
        }
        return nil
    }
}

extension RunnerAppSupervisor {
    /// Stops unrecorded instances of an app run as detached processes (systemd units are named by port and need no search).
    public func stopStrays(app: AppConfig, known: [Instance], log: any DeploymentLog) async -> [String] {
        guard app.run.runner == .process else { return [] }
        return await processes.stopStrays(app: app, known: known, log: log)
    }
}
