import Foundation
import Testing
@testable import PushDeploy

@Suite("Deploy queue")
struct DeployQueueTests {
    let scratch = ScratchDirectory()

    private func makeQueue(cancelSuperseded: Bool = false) async throws -> (DeployQueue, FileDeploymentHistory, GatedRunner) {
        let store = FileDeploymentHistory(stateDirectory: scratch.path)
        try await store.open(apps: ["shop"])
        let runner = GatedRunner()
        return (DeployQueue(app: testApp(cancelSuperseded: cancelSuperseded), history: store, runner: runner), store, runner)
    }

    private func push(_ commit: String, delivery: String? = nil) -> Trigger {
        Trigger(source: .github, deliveryId: delivery, ref: "refs/heads/main", commit: commit)
    }

    @Test func oneRunsOneWaitsAndANewerPushSupersedesTheWaitingOne() async throws {
        let (queue, store, runner) = try await makeQueue()
        let first = try await queue.submit(push("a1")).deployment
        await runner.waitUntilParked(first.id)
        let second = try await queue.submit(push("b2")).deployment
        let third = try await queue.submit(push("c3")).deployment

        let snapshot = await queue.snapshot()
        #expect(snapshot.running?.id == first.id)
        #expect(snapshot.waiting.map(\.id) == [third.id])
        let superseded = try #require(try await store.deployment(app: "shop", id: second.id))
        #expect(superseded.status == .superseded)
        #expect(superseded.supersededBy == third.id)

        await runner.open(first.id)
        await runner.waitUntilParked(third.id)
        await runner.open(third.id)
        await queue.waitUntilIdle()
        #expect(try await store.deployment(app: "shop", id: first.id)?.status == .succeeded)
        #expect(try await store.deployment(app: "shop", id: third.id)?.status == .succeeded)
        #expect(await runner.startedIDs == [first.id, third.id])
    }

    @Test("a flood of pushes: the newest waits, every other is superseded by a newer one")
    func aFloodOfPushesLeavesOnlyTheNewestWaiting() async throws {
        let (queue, _, runner) = try await makeQueue()
        let first = try await queue.submit(push("a0")).deployment
        await runner.waitUntilParked(first.id)
        let count = 40
        let ids = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 1 ... count {
                group.addTask { try await queue.submit(self.push("c\(index)", delivery: "flood-\(index)")).deployment.id }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        let newest = try #require(ids.max())
        #expect(Set(ids).count == count)
        #expect(await queue.snapshot().waiting.map(\.id) == [newest])
        // What is on disk, read by a second store as a restart would.
        let reread = FileDeploymentHistory(stateDirectory: scratch.path)
        let interrupted = try await reread.open(apps: ["shop"])
        #expect(Set(interrupted.map(\.id)) == [first.id, newest])
        for id in ids where id != newest {
            let record = try #require(try await reread.deployment(app: "shop", id: id))
            #expect(record.status == .superseded)
            #expect((record.supersededBy ?? 0) > id)
        }

        await runner.open(first.id)
        await runner.waitUntilParked(newest)
        await runner.open(newest)
        await queue.waitUntilIdle()
        #expect(await runner.startedIDs == [first.id, newest])
    }

    @Test("a rollback during the watch cuts it short: the watched deployment is rolled_back and the rollback starts at once")
    func aRollbackDuringTheWatchStartsAtOnce() async throws {
        let (queue, store, runner) = try await makeQueue()
        let deployment = try await queue.submit(push("a1")).deployment
        await runner.waitUntilParked(deployment.id)
        await runner.open(deployment.id, .watchThenWait)
        await runner.waitUntilParked(deployment.id)
        let asked = ContinuousClock.now
        let rollback = try await queue.rollback(to: nil, trigger: Trigger(source: .manual))
        await runner.waitUntilParked(rollback.id)
        #expect(ContinuousClock.now - asked < .seconds(2))
        let watched = try #require(try await store.deployment(app: "shop", id: deployment.id))
        #expect(watched.status == .rolledBack)
        #expect(watched.error == "rolled back by deployment \(rollback.id) during watching")
        await runner.open(rollback.id)
        await queue.waitUntilIdle()
        #expect(try await store.deployment(app: "shop", id: rollback.id)?.status == .succeeded)
    }

    @Test func aRepeatedDeliveryReturnsTheFirstDeployment() async throws {
        let (queue, store, runner) = try await makeQueue()
        let first = try await queue.submit(push("a1", delivery: "guid-1"))
        let again = try await queue.submit(push("a1", delivery: "guid-1"))
        #expect(first.isNew)
        #expect(!again.isNew)
        #expect(again.deployment.id == first.deployment.id)
        await runner.waitUntilParked(first.deployment.id)
        await runner.open(first.deployment.id)
        await queue.waitUntilIdle()
        #expect(try await store.list(app: "shop").count == 1)
    }

    @Test func aFailingRunIsRecordedFailedWithItsReason() async throws {
        let (queue, store, runner) = try await makeQueue()
        let deployment = try await queue.submit(push("a1")).deployment
        await runner.waitUntilParked(deployment.id)
        await runner.open(deployment.id, .fail("gradle exited with status 1"))
        await queue.waitUntilIdle()
        let record = try #require(try await store.deployment(app: "shop", id: deployment.id))
        #expect(record.status == .failed)
        #expect(record.error == "gradle exited with status 1")
        #expect(record.phases.map(\.name) == [.queued, .fetching])
        #expect(record.phases.allSatisfy { $0.endedAt != nil })
        #expect(record.finishedAt != nil)
    }

    @Test func aRollbackCancelsADeploymentThatHasNotSwitchedAndGoesFirst() async throws {
        let (queue, store, runner) = try await makeQueue()
        let running = try await queue.submit(push("a1")).deployment
        await runner.waitUntilParked(running.id)
        let waiting = try await queue.submit(push("b2")).deployment
        let rollback = try await queue.rollback(to: nil, trigger: Trigger(source: .manual))

        await runner.waitUntilParked(rollback.id)
        #expect(try await store.deployment(app: "shop", id: running.id)?.status == .cancelled)
        #expect(try await store.deployment(app: "shop", id: running.id)?.error == "cancelled by rollback \(rollback.id)")
        #expect(await queue.snapshot().running?.id == rollback.id)
        await runner.open(rollback.id)
        await runner.waitUntilParked(waiting.id)
        await runner.open(waiting.id)
        await queue.waitUntilIdle()
        #expect(await runner.startedIDs == [running.id, rollback.id, waiting.id])
        #expect(try await store.deployment(app: "shop", id: rollback.id)?.kind == .rollback)
    }

    @Test func aRollbackWaitsForADeploymentThatAlreadySwitchedTraffic() async throws {
        let (queue, store, runner) = try await makeQueue()
        let running = try await queue.submit(push("a1")).deployment
        await runner.waitUntilParked(running.id)
        await runner.open(running.id, .switchThenWait)
        while await queue.snapshot().running?.phase != .switching { await Task.yield() }
        await runner.waitUntilParked(running.id)
        let rollback = try await queue.rollback(to: nil, trigger: Trigger(source: .manual))
        #expect(await queue.snapshot().waiting.map(\.id) == [rollback.id])
        await runner.open(running.id)
        await runner.waitUntilParked(rollback.id)
        #expect(try await store.deployment(app: "shop", id: running.id)?.status == .succeeded)
        await runner.open(rollback.id)
        await queue.waitUntilIdle()
    }

    @Test func cancelSupersededStopsTheRunningBuild() async throws {
        let (queue, store, runner) = try await makeQueue(cancelSuperseded: true)
        let running = try await queue.submit(push("a1")).deployment
        await runner.waitUntilParked(running.id)
        let newer = try await queue.submit(push("b2")).deployment
        await runner.waitUntilParked(newer.id)
        let record = try #require(try await store.deployment(app: "shop", id: running.id))
        #expect(record.status == .superseded)
        #expect(record.error == "superseded by deployment \(newer.id)")
        await runner.open(newer.id)
        await queue.waitUntilIdle()
    }

    @Test func shutdownRecordsTheRunningDeploymentInterrupted() async throws {
        let (queue, store, runner) = try await makeQueue()
        let running = try await queue.submit(push("a1")).deployment
        await runner.waitUntilParked(running.id)
        await queue.shutdown()
        #expect(try await store.deployment(app: "shop", id: running.id)?.status == .interrupted)
        await #expect(throws: QueueError.shuttingDown) { try await queue.submit(push("b2")) }
    }

    @Test("a rollback asked for during a canary step: the canary taken back was the whole rollback, the stable release stays")
    func aRollbackDuringACanaryStepGoesNoFurther() async throws {
        let history = MemoryDeploymentHistory()
        _ = try await history.open(apps: ["shop"])
        var app = testApp()
        app.strategy = .canary(blue: 8081, green: 8082, plan: CanaryPlan())
        let manual = Trigger(source: .manual)
        for version in ["0.9", "1.0"] {
            let deployment = try await history.create(app: "shop", kind: .deploy, trigger: manual, strategy: "canary").deployment
            _ = try await history.update(app: "shop", id: deployment.id) { $0.version = version; $0.finish(.succeeded) }
        }
        let canary = try await history.create(app: "shop", kind: .deploy, trigger: manual, strategy: "canary").deployment
        let rollback = try await history.create(app: "shop", kind: .rollback, trigger: manual, strategy: "canary").deployment
        _ = try await history.update(app: "shop", id: canary.id) {
            $0.version = "2.0"
            $0.finish(.rolledBack, error: "rolled back by deployment \(rollback.id) during watching")
        }
        // Any rollout would throw: nothing may be started or switched.
        let deployer = Deployer(stateDirectory: scratch.path, fetcher: UnavailableStep(step: "fetching"), builder: UnavailableStep(step: "building"),
                                rollout: UnavailableStep(step: "rollout"), releases: MemoryReleaseStore(), history: history)
        let (progress, record) = DeploymentProgress.inMemory(rollback)
        #expect(try await deployer.run(rollback, app: app, progress: progress) == .live)
        #expect(await record.deployment.version == "1.0")
        #expect(await record.deployment.note?.contains("was taken back during a canary step") == true)

        // The same rollback after a blue-green deployment, or with a target, goes on to the rollout as always.
        app.strategy = .blueGreen(blue: 8081, green: 8082)
        await #expect(throws: DeployError.self) { _ = try await deployer.run(rollback, app: app, progress: progress) }
    }

    @Test func theRealPipelineFailsClearlyAtAStepThatIsNotAvailable() async throws {
        let store = FileDeploymentHistory(stateDirectory: scratch.path)
        try await store.open(apps: ["shop"])
        let deployer = Deployer(stateDirectory: scratch.path, fetcher: UnavailableStep(step: "fetching with libgit2"),
                                builder: UnavailableStep(step: "building"), rollout: UnavailableStep(step: "rollout"),
                                releases: MemoryReleaseStore(), history: store)
        let queue = DeployQueue(app: testApp(), history: store, runner: deployer)
        let deployment = try await queue.submit(push("a1")).deployment
        await queue.waitUntilIdle()
        let record = try #require(try await store.deployment(app: "shop", id: deployment.id))
        #expect(record.status == .failed)
        #expect(record.error == "fetching with libgit2 is not available in this version of pushdeploy")
        let log = try String(contentsOfFile: store.logPath(app: "shop", id: deployment.id), encoding: .utf8)
        #expect(log.contains("phase: fetching"))
        #expect(log.contains("failed: fetching with libgit2 is not available"))
    }
}
