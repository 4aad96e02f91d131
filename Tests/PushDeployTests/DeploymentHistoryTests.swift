import Foundation
import Testing
@testable import PushDeploy

@Suite("Deployment history")
struct DeploymentHistoryTests {
    let scratch = ScratchDirectory()

    private func recordOnDisk(_ app: String, _ id: Int) throws -> Deployment {
        let path = "\(scratch.path)/deployments/\(app)/\(AppRecords.fileName(id)).json"
        return try JSONDecoder.pushDeploy.decode(Deployment.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func recordText(_ app: String, _ id: Int) throws -> String {
        try String(contentsOfFile: "\(scratch.path)/deployments/\(app)/\(AppRecords.fileName(id)).json", encoding: .utf8)
    }

    @Test func recordsAreNumberedFilesRewrittenAtEveryPhase() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        let (first, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        let (second, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        #expect(first.id == 1)
        #expect(second.id == 2)
        let path = "\(scratch.path)/deployments/shop/000002.json"
        #expect(FileManager.default.fileExists(atPath: path))
        try await history.update(app: "shop", id: 2) { $0.enter(.fetching) }
        try await history.update(app: "shop", id: 2) { $0.enter(.building) }

        let onDisk = try recordOnDisk("shop", 2)
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

    @Test("the file on disk is, byte for byte, what the history returned when the call returned")
    func theFileEqualsTheAnswerAtOnce() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        let (created, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .github, deliveryId: "x"), strategy: "rolling")
        #expect(try recordText("shop", created.id) == String(decoding: try JSONEncoder.pushDeploy.encode(created), as: UTF8.self))
        for phase in [DeploymentStatus.fetching, .building, .starting, .healthy, .switching, .watching] {
            let changed = try await history.update(app: "shop", id: created.id) { $0.enter(phase); $0.version = "v-\(phase)" }
            #expect(try recordText("shop", created.id) == String(decoding: try JSONEncoder.pushDeploy.encode(changed), as: UTF8.self))
        }
        let finished = try await history.update(app: "shop", id: created.id) { $0.finish(.succeeded) }
        #expect(try recordText("shop", created.id) == String(decoding: try JSONEncoder.pushDeploy.encode(finished), as: UTF8.self))
    }

    @Test func aFailedChangeSavesNothing() async throws {
        struct Refused: Error {}
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        let (created, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "rolling")
        await #expect(throws: Refused.self) {
            try await history.update(app: "shop", id: created.id) { $0.enter(.building); throw Refused() }
        }
        #expect(try recordOnDisk("shop", created.id).status == .queued)
        #expect(try await history.deployment(app: "shop", id: created.id)?.status == .queued)
    }

    @Test func anUnfinishedDeploymentIsClosedAsInterruptedAtStartUp() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        let (deployment, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        try await history.update(app: "shop", id: deployment.id) { $0.enter(.building) }

        let restarted = FileDeploymentHistory(stateDirectory: scratch.path)
        let interrupted = try await restarted.open(apps: ["shop"])
        #expect(interrupted.map(\.id) == [deployment.id])
        let record = try #require(try await restarted.deployment(app: "shop", id: deployment.id))
        #expect(record.status == .interrupted)
        #expect(record.error == "pushdeploy stopped during building")
        #expect(record.phases.last?.endedAt != nil)
        #expect(try recordOnDisk("shop", deployment.id).status == .interrupted)
        let (next, _) = try await restarted.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        #expect(next.id == deployment.id + 1)
    }

    @Test func aRepeatedDeliveryIsRecognisedAfterARestart() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        let trigger = Trigger(source: .github, deliveryId: "72d3162e-cc78-11e3-81ab-4c9367dc0958", commit: "a1")
        let (first, isNew) = try await history.create(app: "shop", kind: .deploy, trigger: trigger, strategy: "blue-green")
        #expect(isNew)

        let restarted = FileDeploymentHistory(stateDirectory: scratch.path)
        try await restarted.open(apps: ["shop"])
        let (again, againIsNew) = try await restarted.create(app: "shop", kind: .deploy, trigger: trigger, strategy: "blue-green")
        #expect(!againIsNew)
        #expect(again.id == first.id)
        let gitlab = Trigger(source: .gitlab, deliveryId: trigger.deliveryId, commit: "a1")
        #expect(try await restarted.create(app: "shop", kind: .deploy, trigger: gitlab, strategy: "blue-green").isNew)
    }

    @Test("a record written after the index (a crash between the two) is read back at start-up")
    func recordsTheIndexMissedAreReadAtStartUp() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        let (first, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .github, deliveryId: "d-1"), strategy: "blue-green")
        let index = try Data(contentsOf: URL(fileURLWithPath: "\(scratch.path)/deployments/shop/index.json"))
        let (second, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .github, deliveryId: "d-2"), strategy: "blue-green")
        try await history.update(app: "shop", id: first.id) { $0.version = "1.0"; $0.finish(.succeeded) }
        // The index as it was before the second record and the first's success: both writes "lost".
        try index.write(to: URL(fileURLWithPath: "\(scratch.path)/deployments/shop/index.json"))

        let restarted = FileDeploymentHistory(stateDirectory: scratch.path)
        let interrupted = try await restarted.open(apps: ["shop"])
        #expect(interrupted.map(\.id) == [second.id])
        let summaries = await restarted.summaries(app: "shop")
        #expect(summaries.map(\.id) == [first.id, second.id])
        #expect(summaries.first?.status == .succeeded)
        #expect(summaries.liveVersion == "1.0")
        #expect(try await restarted.create(app: "shop", kind: .deploy, trigger: Trigger(source: .github, deliveryId: "d-2"), strategy: "blue-green").isNew == false)
    }

    @Test func aLostIndexIsRebuiltFromTheRecords() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        for index in 1...3 {
            let (deployment, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
            try await history.update(app: "shop", id: deployment.id) { $0.version = "\(index).0"; $0.finish(.succeeded) }
        }
        try "{ not json".write(toFile: "\(scratch.path)/deployments/shop/index.json", atomically: true, encoding: .utf8)
        let restarted = FileDeploymentHistory(stateDirectory: scratch.path)
        try await restarted.open(apps: ["shop"])
        #expect(await restarted.summaries(app: "shop").map(\.version) == ["1.0", "2.0", "3.0"])
    }

    @Test("changes after the last create (which leave the index as it was) are read back at start-up")
    func changesAfterTheIndexAreReadBack() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        for index in 1...3 {
            let (deployment, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
            try await history.update(app: "shop", id: deployment.id) { $0.enter(.fetching) }
            try await history.update(app: "shop", id: deployment.id) { $0.enter(.building) }
            try await history.update(app: "shop", id: deployment.id) { $0.version = "\(index).0"; $0.finish(.succeeded) }
        }
        let restarted = FileDeploymentHistory(stateDirectory: scratch.path)
        #expect(try await restarted.open(apps: ["shop"]).isEmpty)
        let summaries = await restarted.summaries(app: "shop")
        #expect(summaries.map(\.status) == [.succeeded, .succeeded, .succeeded])
        #expect(summaries.liveVersion == "3.0")
        #expect(try await restarted.list(app: "shop", limit: 1).first == (try recordOnDisk("shop", 3)))
    }

    @Test("start-up reads the index, not the finished records it vouches for")
    func startUpTrustsTheIndexForOlderFinishedRecords() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        for index in 1...40 {
            let (deployment, _) = try await history.create(app: "shop", kind: .deploy,
                                                           trigger: Trigger(source: .github, deliveryId: "push-\(index)"), strategy: "blue-green")
            try await history.update(app: "shop", id: deployment.id) { $0.version = "\(index).0"; $0.finish(.succeeded) }
        }
        // Records 1 to 39 are finished and older than the index (40's create wrote it): spoil them and date them
        // back. Had start-up read one, it would report it unreadable.
        for id in 1...39 {
            let path = "\(scratch.path)/deployments/shop/\(AppRecords.fileName(id)).json"
            try "spoilt".write(toFile: path, atomically: false, encoding: .utf8)
            var times = [timespec(tv_sec: time(nil) - 3600, tv_nsec: 0), timespec(tv_sec: time(nil) - 3600, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        }
        let restarted = FileDeploymentHistory(stateDirectory: scratch.path)
        try await restarted.open(apps: ["shop"])
        #expect(await restarted.unreadableRecords().isEmpty)
        let summaries = await restarted.summaries(app: "shop")
        #expect(summaries.count == 40)
        #expect(summaries.liveVersion == "40.0")
        #expect(summaries.allSatisfy { $0.status == .succeeded })
        #expect(try await restarted.create(app: "shop", kind: .deploy, trigger: Trigger(source: .github, deliveryId: "push-40"),
                                           strategy: "blue-green").isNew == false)
    }

    @Test func creatingBeforeOpeningIsRefused() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        await #expect(throws: HistoryError.notOpened(app: "shop")) {
            try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "rolling")
        }
    }

    @Test func anUnreadableRecordIsReportedAndItsIdStaysTaken() async throws {
        let path = scratch.write("deployments/shop/000001.json", "{\"id\": 1, \"app\": ")
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        #expect(await history.unreadableRecords() == [path])
        let (next, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        #expect(next.id == 2)
        #expect(try await history.list(app: "shop").map(\.id) == [2])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"id\": 1, \"app\": ")
        // Also after a restart, when the index no longer names it.
        let restarted = FileDeploymentHistory(stateDirectory: scratch.path)
        try await restarted.open(apps: ["shop"])
        #expect(try await restarted.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green").deployment.id == 3)
    }

    @Test func listShowsTheNewestFirst() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: ["shop"])
        for _ in 0..<5 {
            _ = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        }
        #expect(try await history.list(app: "shop", limit: 3).map(\.id) == [5, 4, 3])
    }

    @Test("keep_history: the oldest go first, with their logs, never the live release's or the rollback target's")
    func pruningKeepsTheLiveAndRollbackRecords() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: [AppHistorySettings(app: "shop", keepHistory: 10)])
        // 1: 1.0 succeeded (the rollback target), 2: 2.0 succeeded (live), then 20 failed pushes.
        for version in ["1.0", "2.0"] {
            let (deployment, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
            try await history.update(app: "shop", id: deployment.id) { $0.version = version; $0.finish(.succeeded) }
        }
        for index in 0..<20 {
            let (deployment, _) = try await history.create(app: "shop", kind: .deploy,
                                                           trigger: Trigger(source: .github, deliveryId: "push-\(index)"), strategy: "blue-green")
            (try await history.log(app: "shop", id: deployment.id)).line("building")
            try await history.update(app: "shop", id: deployment.id) { $0.finish(.failed, error: "broken") }
        }
        let kept = await history.summaries(app: "shop").map(\.id)
        #expect(kept.count == 10)
        #expect(kept.prefix(2) == [1, 2])
        #expect(kept.suffix(8) == Array(15...22))
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(scratch.path)/deployments/shop")
        #expect(files.filter { $0.hasSuffix(".json") && $0 != "index.json" }.count == 10)
        #expect(!files.contains("000003.json") && !files.contains("000003.log"))
        #expect(files.contains("000022.log"))
        // A pruned delivery is forgotten; a kept one is still recognised.
        #expect(try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .github, deliveryId: "push-19"), strategy: "blue-green").isNew == false)
        // After a restart the same.
        let restarted = FileDeploymentHistory(stateDirectory: scratch.path)
        try await restarted.open(apps: [AppHistorySettings(app: "shop", keepHistory: 10)])
        #expect(await restarted.summaries(app: "shop").prefix(2).map(\.version) == ["1.0", "2.0"])
    }

    @Test("a log past its cap keeps its tail and says that it was cut")
    func aLogIsCappedKeepingItsTail() async throws {
        let history = FileDeploymentHistory(stateDirectory: scratch.path)
        try await history.open(apps: [AppHistorySettings(app: "shop", logMaxBytes: 64 << 10)])
        let (deployment, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
        let log = try await history.log(app: "shop", id: deployment.id)
        var offset = 0
        for line in 0..<5000 {
            log.write("line \(line) \(String(repeating: "x", count: 40))\n")
            if line == 100 { offset = await history.readLog(app: "shop", id: deployment.id, from: 0).nextOffset }
        }
        let path = history.logPath(app: "shop", id: deployment.id)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size <= 64 << 10)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("[pushdeploy cut the first "))
        #expect(text.hasSuffix("line 4999 \(String(repeating: "x", count: 40))\n"))
        // Every line after the marker is whole.
        for line in text.split(separator: "\n").dropFirst() { #expect(line.hasPrefix("line ")) }
        // A follower whose offset predates the cut is told, and reads from the new start.
        let chunk = await history.readLog(app: "shop", id: deployment.id, from: offset + 200_000)
        #expect(chunk.cut)
        #expect(String(decoding: chunk.data, as: UTF8.self).hasPrefix("[pushdeploy cut"))
    }

    @Test("a field of Deployment round-trips through the record, whatever it is")
    func everyPropertyRoundTrips() throws {
        var deployment = Deployment(id: 7, app: "shop", kind: .rollback,
                                    trigger: Trigger(source: .gitea, deliveryId: "d", ref: "refs/heads/main", commit: String(repeating: "a", count: 40),
                                                     repository: "acme/shop", pusher: "ann", message: "fix: ünïcödé \"quoted\"\n"),
                                    strategy: "rolling", createdAt: Date(timeIntervalSince1970: 1_790_000_000.125))
        deployment.enter(.fetching, at: Date(timeIntervalSince1970: 1_790_000_001.5))
        deployment.commit = String(repeating: "b", count: 40)
        deployment.version = "1.0.1-SNAPSHOT-20261130"
        deployment.supersededBy = 9
        deployment.rollbackTo = "000003"
        deployment.previousVersion = "1.0.0"
        deployment.note = "a note"
        deployment.guardSteps = [GuardStep(percent: 10, release: GuardFigures(requests: 30, failures: 6, p99Seconds: 0.25),
                                           stable: GuardFigures(requests: 270, failures: 0, p99Seconds: nil), verdict: .tripped, reason: "the guard: …")]
        deployment.finish(.failed, error: "broken", at: Date(timeIntervalSince1970: 1_790_000_002.25))
        // Every stored property is set here, so a field added later without a value in this sample shows up as nil.
        for child in Mirror(reflecting: deployment).children {
            let described = "\(child.value)"
            #expect(described != "nil", "set \(child.label ?? "?") in this test's sample")
        }
        let decoded = try JSONDecoder.pushDeploy.decode(Deployment.self, from: JSONEncoder.pushDeploy.encode(deployment))
        #expect(decoded == deployment)
        let keys = try #require(try JSONSerialization.jsonObject(with: JSONEncoder.pushDeploy.encode(deployment)) as? [String: Any]).keys
        #expect(keys.count == Mirror(reflecting: deployment).children.count)
    }
}

@Suite("Memory deployment history")
struct MemoryDeploymentHistoryTests {
    @Test func behavesLikeTheFileHistory() async throws {
        let history = MemoryDeploymentHistory()
        try await history.open(apps: [AppHistorySettings(app: "shop", keepHistory: 3)])
        let trigger = Trigger(source: .github, deliveryId: "d-1")
        let (first, _) = try await history.create(app: "shop", kind: .deploy, trigger: trigger, strategy: "blue-green")
        #expect(try await history.create(app: "shop", kind: .deploy, trigger: trigger, strategy: "blue-green").deployment.id == first.id)
        try await history.update(app: "shop", id: first.id) { $0.version = "1.0"; $0.finish(.succeeded) }
        for _ in 0..<4 {
            let (next, _) = try await history.create(app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green")
            try await history.update(app: "shop", id: next.id) { $0.finish(.failed) }
        }
        #expect(await history.summaries(app: "shop").map(\.id) == [1, 4, 5])
        (await history.log(app: "shop", id: 5)).write("hello\n")
        #expect(await history.readLog(app: "shop", id: 5, from: 0).data == Data("hello\n".utf8))
    }
}
