import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import PushDeploy

/// A scratch folder and a private nginx in front of two free slot ports: the one traffic set-up of the integration
/// tests, under the in-process rollouts (`RolloutLab`), the real server (`ServeLab`) and the switch tests.
///
/// ``tearDown()`` stops nginx (master and workers), then every process that names the folder (app instances,
/// backends), and removes the folder; ``with(_:rolling:_:)`` runs it on every exit path.
final class BlueGreenLab: Sendable {
    let folder: String
    let nginx: PrivateNginx
    let slots: (blue: Int, green: Int)

    /// A new folder `<temporary>/pushdeploy-<name>-<uuid>` with nginx's config in `nginx/`; nginx is not started yet.
    ///
    /// `rolling` includes the app's file at http level (an upstream) rather than in the server block (`$service_url`).
    /// `canary` includes it at http level too and proxies to `$pushdeploy_demo_url`; `readTimeout` is nginx's `proxy_read_timeout`.
    init(_ name: String, rolling: Bool = false, canary: Bool = false, readTimeout: Duration? = nil) throws {
        folder = NSTemporaryDirectory() + "pushdeploy-\(name)-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let ports = Integration.freePorts(3)
        slots = (ports[1], ports[2])
        do {
            nginx = try PrivateNginx(prefix: folder + "/nginx", app: "demo", rolling: rolling, canary: canary, readTimeout: readTimeout, port: ports[0])
        } catch {
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
    }

    /// Runs `body` with a new lab and tears the lab down afterwards, whether `body` returns or throws.
    static func with<Outcome>(_ name: String, rolling: Bool = false, canary: Bool = false, readTimeout: Duration? = nil,
                              _ body: (BlueGreenLab) async throws -> Outcome) async throws -> Outcome {
        let lab = try BlueGreenLab(name, rolling: rolling, canary: canary, readTimeout: readTimeout)
        defer { lab.tearDown() }
        return try await body(lab)
    }

    /// Writes the include file as an earlier deployment would have (traffic to `ports`) and starts nginx on it.
    func startNginx(routedTo ports: [Int], app: String, strategy: Strategy) throws {
        try NginxInclude.render(ports, app: app, strategy: strategy).write(toFile: nginx.includeFile, atomically: true, encoding: .utf8)
        try nginx.start()
    }

    /// The body nginx answers `/` with now (one new connection), nil unless it is a 200.
    func served() -> String? {
        guard let (status, body) = nginx.get(), status == 200 else { return nil }
        return body
    }

    /// The version the demo app behind nginx reports now (`demo-app <version>`), nil when nothing answers 200.
    func servedVersion() -> String? {
        served()?.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").dropFirst().first.map(String.init)
    }

    /// True once `consecutive` answers in a row come from `version`, polled until `deadline` passes.
    ///
    /// After a reload nginx's old workers still take new connections for some tens of milliseconds, so right after a
    /// switch answers from both releases interleave; one answer from the new release does not mean the old one gets no more.
    func eventuallyServesOnly(_ version: String, consecutive: Int = 12, within deadline: Duration = .seconds(5)) async -> Bool {
        let end = ContinuousClock.now + deadline
        var streak = 0
        while ContinuousClock.now < end {
            streak = servedVersion() == version ? streak + 1 : 0
            if streak >= consecutive { return true }
            if streak == 0 { try? await Task.sleep(for: .milliseconds(20)) }
        }
        return false
    }

    /// Every live process that names the lab's folder on its command line.
    func processes() -> [TestProcesses.Entry] {
        TestProcesses.naming(folder)
    }

    /// Stops nginx and waits for its workers, stops (SIGKILL) every process still naming the folder, removes the folder.
    ///
    /// nginx goes first and on its own: killing its master by its command line would orphan the workers, which name
    /// no folder and keep listening.
    func tearDown() {
        nginx.stop()
        TestProcesses.stop(signal: SIGKILL, grace: .seconds(2)) { processes() }
        try? FileManager.default.removeItem(atPath: folder)
    }
}
