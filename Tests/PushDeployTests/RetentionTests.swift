import Foundation
import Testing
@testable import PushDeploy

/// Which releases a deployment may prune, worked out from the history and `state.json`, and the prune itself.
@Suite("Retention and rollback targets")
struct RetentionTests {
    /// A history of deployments with these outcomes (version nil for one that built nothing), over a file store.
    private func history(_ outcomes: [(String?, DeploymentStatus)], in scratch: ScratchDirectory) async throws -> FileDeploymentHistory {
        let store = FileDeploymentHistory(stateDirectory: scratch.path)
        _ = try await store.open(apps: ["shop"])
        for (index, (version, status)) in outcomes.enumerated() {
            let (deployment, _) = try await store.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual, deliveryId: "d\(index)"),
                                                         strategy: "blue-green")
            _ = try await store.update(app: "shop", id: deployment.id) {
                $0.version = version
                $0.finish(status, error: status == .succeeded ? nil : "broken")
            }
        }
        return store
    }

    private func release(_ version: String, minutesAgo: Double) -> Release {
        Release(app: "shop", version: version, commit: String(repeating: "a", count: 40),
                builtAt: Date(timeIntervalSinceNow: -minutesAgo * 60), buildSeconds: 1, sha256: "x")
    }

    @Test("the live release, the previous good one and whatever still runs are never pruned, even with keep_releases 1")
    func protectedReleasesSurviveTheirAge() async throws {
        let scratch = ScratchDirectory()
        let store = try await history([("1.0", .succeeded), ("2.0", .succeeded), ("3.0", .failed), ("4.0", .succeeded), ("5.0", .rolledBack)], in: scratch)
        let releases = MemoryReleaseStore((1...5).map { release("\($0).0", minutesAgo: Double(10 - $0)) })
        let targets = HistoryRollbackTargets(history: store, releases: releases)
        #expect(await targets.protectedVersions(app: "shop") == ["4.0", "2.0"])

        // A warm slot still running 1.0 (rolled back to long ago) keeps its jar too, once state.json is consulted.
        let state = AppStateStore(stateDirectory: scratch.path)
        try await state.update(app: "shop") {
            $0.set(Instance(port: 8081, slot: "blue", version: "4.0", commit: "a"), role: .live)
            $0.set(Instance(port: 8082, slot: "green", version: "1.0", commit: "a"), role: .warm)
        }
        let withState = HistoryRollbackTargets(history: store, releases: releases, state: state)
        let protected = await withState.protectedVersions(app: "shop")
        #expect(protected == ["4.0", "2.0", "1.0"])

        // The newest (5.0, rolled back) is the one kept by age; the protected ones stay whatever their age.
        let removed = await releases.prune(app: "shop", keep: 1, protecting: protected)
        #expect(Set(removed) == ["3.0"])
        #expect(Set(await releases.releases(app: "shop").map(\.version)) == ["1.0", "2.0", "4.0", "5.0"])
    }

    @Test("the default rollback target is the last good release before the live one; a pruned target is refused with the list")
    func rollbackTargets() async throws {
        let scratch = ScratchDirectory()
        let store = try await history([("1.0", .succeeded), ("2.0", .succeeded), ("3.0", .failed)], in: scratch)
        let releases = MemoryReleaseStore(["1.0", "2.0", "3.0"].enumerated().map { release($1, minutesAgo: Double(10 - $0)) })
        let targets = HistoryRollbackTargets(history: store, releases: releases)
        let app = testApp()
        #expect(try await targets.target(app: app, requested: nil, rollback: 99).version == "1.0")
        #expect(try await targets.target(app: app, requested: "1", rollback: 99).version == "1.0")
        await #expect(throws: DeployError.noRollbackTarget(app: "shop", reason: "2.0 is already live", available: ["3.0", "1.0"])) {
            try await targets.target(app: app, requested: "2.0", rollback: 99)
        }
        _ = await releases.prune(app: "shop", keep: 1, protecting: ["2.0"])
        await #expect(throws: DeployError.noRollbackTarget(app: "shop", reason: "release 1.0 is not stored (pruned or never built)",
                                                           available: ["3.0"])) {
            try await targets.target(app: app, requested: nil, rollback: 99)
        }

        // What nginx serves wins over the history: after a deployment cut off past its switch, 3.0 is live.
        let state = AppStateStore(stateDirectory: scratch.path)
        try await state.update(app: "shop") { $0.set(Instance(port: 8081, slot: "blue", version: "3.0", commit: "a"), role: .live) }
        let withState = HistoryRollbackTargets(history: store, releases: releases, state: state)
        #expect(try await withState.target(app: app, requested: nil, rollback: 99).version == "2.0")
        #expect(await withState.candidates(app: "shop").map(\.version) == ["2.0"])
    }
}
