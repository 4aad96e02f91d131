import Foundation
import Testing
@testable import PushDeploy

@Suite("ReleaseStore")
struct ReleaseStoreTests {
    private let scratch: String
    private let jar: String

    init() throws {
        scratch = NSTemporaryDirectory() + "pushdeploy-releases-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        jar = "\(scratch)/built.jar"
        try Data("PK fake jar".utf8).write(to: URL(fileURLWithPath: jar))
    }

    private func cleanUp() { try? FileManager.default.removeItem(atPath: scratch) }

    private static func release(_ version: String, minute: Int, app: String = "shop") -> Release {
        Release(app: app, version: version, commit: String(repeating: "a", count: 40),
                builtAt: Date(timeIntervalSince1970: 1_750_000_000 + Double(minute) * 60), buildSeconds: 12.5, sha256: "00ff")
    }

    /// Both stores, so that the in-memory one keeps behaving like the real one.
    private func stores() -> [any ReleaseStore] {
        [FileReleaseStore(root: "\(scratch)/releases"), MemoryReleaseStore()]
    }

    private func storeAll(_ store: any ReleaseStore, _ releases: [Release]) async throws {
        for release in releases {
            #expect(try await store.reserve(app: release.app, version: release.version))
            try await store.store(release, jarAt: jar)
        }
    }

    @Test("stored releases come back newest first, and a version is never handed out twice")
    func storeAndList() async throws {
        defer { cleanUp() }
        for store in stores() {
            try await storeAll(store, [Self.release("1.0-b", minute: 2), Self.release("1.0-a", minute: 1), Self.release("1.0-c", minute: 3)])
            #expect(try await store.releases(app: "shop").map(\.version) == ["1.0-c", "1.0-b", "1.0-a"])
            #expect(try await store.release(app: "shop", version: "1.0-a") == Self.release("1.0-a", minute: 1))
            #expect(try await store.release(app: "shop", version: "2.0") == nil)
            #expect(try await store.reserve(app: "shop", version: "1.0-a") == false)
            #expect(try await store.reserve(app: "shop", version: "1.0-d"))
            #expect(try await store.reserve(app: "shop", version: "1.0-d") == false)
            await #expect(throws: ReleaseStoreError.alreadyStored(app: "shop", version: "1.0-a")) {
                try await store.store(Self.release("1.0-a", minute: 9), jarAt: jar)
            }
            #expect(try await store.releases(app: "other").isEmpty)
        }
    }

    @Test("on disk: app.jar and a snake_case release.json, and nothing else")
    func fileLayout() async throws {
        defer { cleanUp() }
        let store = FileReleaseStore(stateDirectory: scratch)
        let release = Self.release("1.0.1-SNAPSHOT-20250615120000", minute: 0)
        try await storeAll(store, [release])
        let folder = "\(scratch)/releases/shop/1.0.1-SNAPSHOT-20250615120000"
        #expect(store.jarPath(app: "shop", version: release.version) == "\(folder)/app.jar")
        #expect(FileManager.default.contents(atPath: "\(folder)/app.jar") == Data("PK fake jar".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["app.jar", "release.json"])
        let json = try #require(FileManager.default.contents(atPath: "\(folder)/release.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(Set(object.keys) == ["app", "version", "commit", "built_at", "build_seconds", "sha256"])
        #expect(object["built_at"] as? String == "2025-06-15T15:06:40.000Z")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(scratch)/releases/shop") == [release.version])
    }

    @Test("a discarded reservation leaves no folder and frees the version")
    func discard() async throws {
        defer { cleanUp() }
        let store = FileReleaseStore(root: "\(scratch)/releases")
        #expect(try store.reserve(app: "shop", version: "1.0-failed"))
        try store.discard(app: "shop", version: "1.0-failed")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(scratch)/releases/shop").isEmpty)
        #expect(try store.reserve(app: "shop", version: "1.0-failed"))

        let memory = MemoryReleaseStore()
        #expect(try await memory.reserve(app: "shop", version: "1.0-failed"))
        await memory.discard(app: "shop", version: "1.0-failed")
        #expect(await memory.isReserved(app: "shop", version: "1.0-failed") == false)
    }

    @Test("a folder that is not a whole release is never listed")
    func partialFolders() async throws {
        defer { cleanUp() }
        let store = FileReleaseStore(root: "\(scratch)/releases")
        try await storeAll(store, [Self.release("1.0-a", minute: 1)])
        #expect(try store.reserve(app: "shop", version: "1.0-building"))
        try FileManager.default.createDirectory(atPath: "\(scratch)/releases/shop/1.0-no-json", withIntermediateDirectories: true)
        #expect(try store.releases(app: "shop").map(\.version) == ["1.0-a"])
    }

    @Test("prune keeps the newest N and every protected release")
    func prune() async throws {
        defer { cleanUp() }
        for store in stores() {
            try await storeAll(store, (1 ... 7).map { Self.release("1.0-\($0)", minute: $0) })
            // A reservation (a build in progress or one that failed) takes no place.
            #expect(try await store.reserve(app: "shop", version: "1.0-8"))
            let removed = try await store.prune(app: "shop", keep: 3, protecting: ["1.0-2", "1.0-6"])
            #expect(removed.sorted() == ["1.0-1", "1.0-3", "1.0-4"])
            #expect(try await store.releases(app: "shop").map(\.version) == ["1.0-7", "1.0-6", "1.0-5", "1.0-2"])
            #expect(try await store.prune(app: "shop", keep: 3, protecting: ["1.0-2", "1.0-6"]).isEmpty)
            // keep is at least 1: the newest release always stays.
            #expect(try await store.prune(app: "shop", keep: 0, protecting: []) == ["1.0-6", "1.0-5", "1.0-2"])
            #expect(try await store.releases(app: "shop").map(\.version) == ["1.0-7"])
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: "\(scratch)/releases/shop").sorted()
        #expect(left == [".building-1.0-8", "1.0-7"])
    }

    @Test("names that are not one safe folder name are refused", arguments: ["", "..", ".hidden", "a/b", "v 1", "../etc"])
    func invalidNames(name: String) async throws {
        defer { cleanUp() }
        for store in stores() {
            await #expect(throws: ReleaseStoreError.invalidName(name)) { _ = try await store.reserve(app: "shop", version: name) }
            await #expect(throws: ReleaseStoreError.invalidName(name)) { _ = try await store.reserve(app: name, version: "1.0") }
        }
    }
}
