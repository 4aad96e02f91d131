import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// Mounts a small tmpfs (root only, as in CI); the test is skipped where mounting is not allowed.
private let canMountTmpfs: Bool = {
    let probe = NSTemporaryDirectory() + "pushdeploy-mount-probe-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: probe) }
    guard (try? Integration.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]))?.status == 0 else { return false }
    _ = try? Integration.run("/bin/umount", [probe])
    return true
}()

extension RolloutTests {
    @Suite("state.json cannot be written")
    struct FullDisk {
        @Test("the disk fills right after a switch: nginx is believed, the port it routes to is never stopped, nothing fails",
              .enabled(if: canMountTmpfs, "needs to mount a tmpfs (root)"))
        func aFullDiskAfterTheSwitch() async throws {
            try await RolloutLab.with { lab in
                let apps = lab.directory + "/apps"
                try FileManager.default.createDirectory(atPath: apps, withIntermediateDirectories: true)
                #expect(try Integration.run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", apps]).status == 0)
                defer { _ = try? Integration.run("/bin/umount", ["-l", apps]) }
                let filler = apps + "/filler"
                let fill = ["/bin/sh", "-c", "dd if=/dev/zero of=\(filler) bs=4k 2>/dev/null; true"]
                let (blue, green) = lab.slots()
                let plain = lab.app(strategy: .blueGreen(blue: blue, green: green))
                let filling = lab.app(strategy: .blueGreen(blue: blue, green: green), hooks: LifecycleHooks(beforeSwitch: fill))
                try lab.startNginx(for: plain)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2, v3) = (try await lab.release("1.0"), try await lab.release("2.0"), try await lab.release("3.0"))
                _ = try await rollout.rollOut(v1, app: plain, progress: lab.progress(app: plain).0)
                let load = try await NginxLoad.start(port: lab.nginx.port)

                // The hook fills the disk just before the switch: nginx moves to green, state.json cannot follow.
                let (second, _) = lab.progress(app: filling, id: 2)
                #expect(try await rollout.rollOut(v2, app: filling, progress: second) == .live)
                let failedAfterSwitch = load.tally.failures.count
                #expect(NginxTrafficSwitch().currentPorts(app: plain) == [green])
                #expect(try lab.stateOnDisk().live.map(\.version) == ["1.0"], "state.json was written after all")
                #expect((second.log as? MemoryDeploymentLog)?.text.contains("could not record the switch in state.json") == true)

                // The next deployment, disk still full: it must not touch green, which nginx routes to.
                let thirdLog = MemoryDeploymentLog()
                let third = DeploymentProgress.inMemory(Deployment(id: 3, app: lab.appName, kind: .deploy, trigger: Trigger(source: .manual),
                                                                   strategy: "blue-green"), log: thirdLog).0
                await #expect(throws: (any Error).self) { try await rollout.rollOut(v3, app: plain, progress: third) }
                let failedAfterFullDeploy = load.tally.failures.count
                #expect(NginxTrafficSwitch().currentPorts(app: plain) == [green])
                #expect(lab.servedVersion() == "2.0")

                // Space again: the deployment goes to blue and nginx follows.
                try FileManager.default.removeItem(atPath: filler)
                #expect(try await rollout.rollOut(v3, app: plain, progress: lab.progress(app: plain, id: 4).0) == .live)
                #expect(NginxTrafficSwitch().currentPorts(app: plain) == [blue])
                #expect(await lab.eventuallyServesOnly("3.0"))
                try await load.waitForMore(than: load.tally.answered, by: 30)
                let total = await load.stop()
                let secondLog = (second.log as? MemoryDeploymentLog)?.text ?? ""
                let where_ = "\(failedAfterSwitch) after the switch, \(failedAfterFullDeploy) after the deployment on a full disk"
                #expect(total.failures.isEmpty, "\(total.failures.count) failed requests (\(where_))\n\(secondLog)\n\(thirdLog.text)")
                #expect(try lab.stateOnDisk().live.map(\.version) == ["3.0"])
            }
        }
    }
}
