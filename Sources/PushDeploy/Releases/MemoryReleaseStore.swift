import Foundation

/// A release store in memory, for unit tests of the steps that build and roll out releases.
public actor MemoryReleaseStore: ReleaseStore {
    private var stored: [String: [String: Release]] = [:]
    private var reserved: Set<[String]> = []
    /// The jar path each release was stored from, by app and version.
    public private(set) var sources: [String: String] = [:]

    public init(_ releases: [Release] = []) {
        for release in releases { stored[release.app, default: [:]][release.version] = release }
    }

    public func releases(app: String) -> [Release] {
        Array(stored[app, default: [:]].values).newestFirst()
    }

    public func release(app: String, version: String) -> Release? {
        stored[app]?[version]
    }

    public nonisolated func jarPath(app: String, version: String) -> String {
        "/memory/releases/\(app)/\(version)/app.jar"
    }

    public func reserve(app: String, version: String) throws -> Bool {
        try ReleaseStoreError.validate(app)
        try ReleaseStoreError.validate(version)
        guard stored[app]?[version] == nil else { return false }
        return reserved.insert([app, version]).inserted
    }

    public func store(_ release: Release, jarAt path: String) throws {
        try ReleaseStoreError.validate(release.app)
        try ReleaseStoreError.validate(release.version)
        guard stored[release.app]?[release.version] == nil else {
            throw ReleaseStoreError.alreadyStored(app: release.app, version: release.version)
        }
        reserved.remove([release.app, release.version])
        stored[release.app, default: [:]][release.version] = release
        sources["\(release.app)/\(release.version)"] = path
    }

    public func discard(app: String, version: String) {
        reserved.remove([app, version])
    }

    /// True while a version is reserved and not yet stored or discarded.
    public func isReserved(app: String, version: String) -> Bool {
        reserved.contains([app, version])
    }

    @discardableResult
    public func prune(app: String, keep: Int, protecting: Set<String>) -> [String] {
        let removed = releases(app: app).prunable(keep: keep, protecting: protecting).map(\.version)
        for version in removed { stored[app]?[version] = nil }
        return removed
    }
}
