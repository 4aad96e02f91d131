import Foundation
import Testing
@testable import PushDeploy

@Suite("Deployment history")
struct DeploymentStoreTests {
    let scratch = ScratchDirectory()

    @Test func recordsAreNumberedFilesRewrittenAtEveryPhase() async throws {
        let store = DeploymentStore(stateDirectory: scratch.path)
        try await store.open(apps: ["shop"])
        let (first, _) = try await store.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        let (second, _) = try await store.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        #expect(first.id == 1)
        #expect(second.id == 2)
        let path = "\(scratch.path)/deployments/shop/000002.json"
        #expect(FileManager.default.fileExists(atPath: path))
        try await store.update(app: "shop", id: 2) { $0.enter(.fetching) }
        try await store.update(app: "shop", id: 2) { $0.enter(.building) }

        let onDisk = try JSONDecoder.pushDeploy.decode(Deployment.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(onDisk.status == .building)
        #expect(onDisk.phases.map(\.name) == [.queued, .fetching, .building])
        #expect(onDisk.phases[1].endedAt != nil)
        #expect(onDisk.phases[2].endedAt == nil)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("\"started_at\""))
        #expect(text.contains("\"strategy\" : \"blue-green\""))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(scratch.path)/deployments/shop").filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty)
    }

    @Test func anUnfinishedDeploymentIsClosedAsInterruptedAtStartUp() async throws {
        let store = DeploymentStore(stateDirectory: scratch.path)
        try await store.open(apps: ["shop"])
        let (deployment, _) = try await store.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        try await store.update(app: "shop", id: deployment.id) { $0.enter(.building) }

        let restarted = DeploymentStore(stateDirectory: scratch.path)
        let interrupted = try await restarted.open(apps: ["shop"])
        #expect(interrupted.map(\.id) == [deployment.id])
        let record = try #require(try await restarted.deployment(app: "shop", id: deployment.id))
        #expect(record.status == .interrupted)
        #expect(record.error == "pushdeploy stopped during building")
        #expect(record.phases.last?.endedAt != nil)
        let (next, _) = try await restarted.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        #expect(next.id == deployment.id + 1)
    }

    @Test func aRepeatedDeliveryIsRecognisedAfterARestart() async throws {
        let store = DeploymentStore(stateDirectory: scratch.path)
        try await store.open(apps: ["shop"])
        let trigger = Trigger(source: .github, deliveryId: "72d3162e-cc78-11e3-81ab-4c9367dc0958", commit: "a1")
        let (first, isNew) = try await store.create(app: "shop", kind: .deploy, trigger: trigger, strategy: "blue-green")
        #expect(isNew)

        let restarted = DeploymentStore(stateDirectory: scratch.path)
        try await restarted.open(apps: ["shop"])
        let (again, againIsNew) = try await restarted.create(app: "shop", kind: .deploy, trigger: trigger, strategy: "blue-green")
        #expect(!againIsNew)
        #expect(again.id == first.id)
        let gitlab = Trigger(source: .gitlab, deliveryId: trigger.deliveryId, commit: "a1")
        #expect(try await restarted.create(app: "shop", kind: .deploy, trigger: gitlab, strategy: "blue-green").isNew)
    }

    @Test func creatingBeforeOpeningIsRefused() async throws {
        let store = DeploymentStore(stateDirectory: scratch.path)
        await #expect(throws: HistoryError.notOpened(app: "shop")) {
            try await store.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "rolling")
        }
    }

    @Test func anUnreadableRecordIsReportedAndItsIdStaysTaken() async throws {
        let path = scratch.write("deployments/shop/000001.json", "{\"id\": 1, \"app\": ")
        let store = DeploymentStore(stateDirectory: scratch.path)
        try await store.open(apps: ["shop"])
        #expect(await store.unreadableRecords == [path])
        let (next, _) = try await store.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        #expect(next.id == 2)
        #expect(try await store.list(app: "shop").map(\.id) == [2])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\": 1, \"app\": ")
    }

    @Test func listShowsTheNewestFirst() async throws {
        let store = DeploymentStore(stateDirectory: scratch.path)
        try await store.open(apps: ["shop"])
        for _ in 0..<5 {
            _ = try await store.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        }
        #expect(try await store.list(app: "shop", limit: 3).map(\.id) == [5, 4, 3])
    }
}
