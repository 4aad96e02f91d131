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
        try await store.sync()
        #expect(FileManager.default.fileExists(atPath: path))
        try await store.update(app: "shop", id: 2) { $0.enter(.fetching) }
        try await store.update(app: "shop", id: 2) { $0.enter(.building) }
        // The journal holds it at once; the file follows within milliseconds, or now with sync().
        try await store.sync()

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

    @Test("records that reached only the journal (a crash before their files) are whole after a restart")
    func theJournalIsReplayedAtStartUp() async throws {
        // Files that would only be written in an hour: as if the process died right after the journal flush.
        let crashed = DeploymentStore(stateDirectory: scratch.path, materializeDelay: .seconds(3600))
        try await crashed.open(apps: ["shop", "blog"])
        let (first, _) = try await crashed.create(app: "shop", kind: .deploy, trigger: Trigger(source: .github, deliveryId: "g-1"), strategy: "blue-green")
        try await crashed.update(app: "shop", id: first.id) { $0.finish(.succeeded, error: nil) }
        let (second, _) = try await crashed.create(app: "blog", kind: .deploy, trigger: Trigger(source: .manual), strategy: "rolling")
        #expect(!FileManager.default.fileExists(atPath: crashed.recordPath(app: "shop", id: first.id)))
        // What the API reads meanwhile comes from the journal.
        #expect(try await crashed.deployment(app: "shop", id: first.id)?.status == .succeeded)
        // A torn last entry (a write cut off by the crash) is ignored.
        let journals = try FileManager.default.contentsOfDirectory(atPath: "\(scratch.path)/deployments").filter { $0.hasPrefix(".journal-") }
        #expect(journals.count == 1)
        let handle = try #require(FileHandle(forWritingAtPath: "\(scratch.path)/deployments/\(journals[0])"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("812 0123456789abcdef shop/000009.json\n{\"app\" : \"sh".utf8))
        try handle.close()

        let restarted = DeploymentStore(stateDirectory: scratch.path)
        let interrupted = try await restarted.open(apps: ["shop", "blog"])
        #expect(interrupted.map(\.id) == [second.id])
        let shop = try JSONDecoder.pushDeploy.decode(Deployment.self, from: Data(contentsOf: URL(fileURLWithPath: restarted.recordPath(app: "shop", id: first.id))))
        #expect(shop.status == .succeeded)
        #expect(shop.trigger.deliveryId == "g-1")
        #expect(!FileManager.default.fileExists(atPath: restarted.recordPath(app: "shop", id: 9)))
        try await restarted.sync()
        let blog = try JSONDecoder.pushDeploy.decode(Deployment.self, from: Data(contentsOf: URL(fileURLWithPath: restarted.recordPath(app: "blog", id: second.id))))
        #expect(blog.status == .interrupted)
        // The repeated delivery is still known, and the replayed journal is gone once its records are flushed.
        #expect(try await restarted.create(app: "shop", kind: .deploy, trigger: Trigger(source: .github, deliveryId: "g-1"), strategy: "blue-green").isNew == false)
        let left = try FileManager.default.contentsOfDirectory(atPath: "\(scratch.path)/deployments").filter { $0 == journals[0] }
        #expect(left.isEmpty)
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

@Suite("Delivery index")
struct DeliveryIndexTests {
    @Test func keysWhoseHashesCollideAreStillToldApart() {
        let keys = ["shop/github/a": 1, "shop/github/b": 2, "shop/gitlab/a": 3]
        let deliveryOf = { (id: Int) in keys.first { $0.value == id }?.key }
        var index = DeliveryIndex(hash: { _ in 7 })
        for (key, id) in keys.sorted(by: { $0.value < $1.value }) {
            index.insert(key, id: id, deliveryOf: deliveryOf)
        }
        for (key, id) in keys {
            #expect(index.first(for: key, deliveryOf: deliveryOf) == id)
        }
        #expect(index.first(for: "shop/github/c", deliveryOf: deliveryOf) == nil)
        index.remove("shop/github/b", id: 2)
        #expect(index.first(for: "shop/github/b", deliveryOf: deliveryOf) == nil)
        #expect(index.first(for: "shop/github/a", deliveryOf: deliveryOf) == 1)
        // The first deployment of a key stays its answer.
        index.insert("shop/github/a", id: 9) { id in id == 1 ? "shop/github/a" : nil }
        #expect(index.first(for: "shop/github/a") { id in id == 1 ? "shop/github/a" : nil } == 1)
    }

    @Test func withItsRealHashEachKeyFindsItsDeployment() {
        var index = DeliveryIndex()
        for id in 1...5000 { index.insert("shop/github/\(id)", id: id) { "shop/github/\($0)" } }
        for id in stride(from: 1, through: 5000, by: 97) {
            #expect(index.first(for: "shop/github/\(id)") { "shop/github/\($0)" } == id)
        }
        #expect(index.first(for: "shop/github/5001") { "shop/github/\($0)" } == nil)
    }
}
