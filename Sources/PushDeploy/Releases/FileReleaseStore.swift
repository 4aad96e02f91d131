#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Releases on disk: `releases/<app>/<version>/app.jar` and `release.json`.
///
/// A build fills a hidden `.building-<version>` folder beside them and renames it into place when it
/// succeeded, so a reader sees a release whole or not at all. Hidden folders are never listed as releases.
/// The methods are synchronous file I/O (small files and one jar copy); they satisfy the async protocol as is.
public struct FileReleaseStore: ReleaseStore {
    /// The `releases` folder.
    public let root: String
    /// A `.building-` folder older than this is left over from a crash and removed by ``prune(app:keep:protecting:)``.
    public var staleBuildAge: TimeInterval = 24 * 3600

    public init(root: String) {
        self.root = root
    }

    /// The store in `<state_dir>/releases`.
    public init(stateDirectory: String) {
        self.init(root: (stateDirectory as NSString).appendingPathComponent("releases"))
    }

    public func jarPath(app: String, version: String) -> String {
        "\(root)/\(app)/\(version)/app.jar"
    }

    /// Where a release's folder is.
    public func directory(app: String, version: String) -> String {
        "\(root)/\(app)/\(version)"
    }

    public func releases(app: String) throws -> [Release] {
        try ReleaseStoreError.validate(app)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(app)")) ?? []
        // A folder without a readable release.json is not a release; it is left for a person to look at.
        return entries.filter { !$0.hasPrefix(".") }.compactMap { try? release(app: app, version: $0) }.newestFirst()
    }

    public func release(app: String, version: String) throws -> Release? {
        try ReleaseStoreError.validate(app)
        try ReleaseStoreError.validate(version)
        let path = "\(directory(app: app, version: version))/release.json"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONDecoder.pushDeploy.decode(Release.self, from: data)
        } catch {
            throw ReleaseStoreError.unreadable(path: path, reason: "\(error)")
        }
    }

    public func reserve(app: String, version: String) throws -> Bool {
        try ReleaseStoreError.validate(app)
        try ReleaseStoreError.validate(version)
        try makeDirectory("\(root)/\(app)")
        guard !FileManager.default.fileExists(atPath: directory(app: app, version: version)) else { return false }
        // mkdir is the lock: of two builds that picked the same version, exactly one creates the folder.
        if mkdir(buildingDirectory(app: app, version: version), 0o750) == 0 { return true }
        if errno == EEXIST { return false }
        throw ReleaseStoreError.file(operation: "mkdir", path: buildingDirectory(app: app, version: version),
                                     reason: String(cString: strerror(errno)))
    }

    public func store(_ release: Release, jarAt path: String) throws {
        let app = release.app, version = release.version
        try ReleaseStoreError.validate(app)
        try ReleaseStoreError.validate(version)
        let final = directory(app: app, version: version)
        guard !FileManager.default.fileExists(atPath: final) else { throw ReleaseStoreError.alreadyStored(app: app, version: version) }
        let building = buildingDirectory(app: app, version: version)
        try makeDirectory(building)
        do {
            try copyDurably(from: path, to: "\(building)/app.jar")
            try AtomicFile.write(JSONEncoder.pushDeploy.encode(release), to: "\(building)/release.json")
            guard rename(building, final) == 0 else {
                if errno == EEXIST || errno == ENOTEMPTY { throw ReleaseStoreError.alreadyStored(app: app, version: version) }
                throw ReleaseStoreError.file(operation: "rename", path: final, reason: String(cString: strerror(errno)))
            }
            try AtomicFile.syncDirectory("\(root)/\(app)")
        } catch let error as ReleaseStoreError {
            try? FileManager.default.removeItem(atPath: building)
            throw error
        } catch {
            try? FileManager.default.removeItem(atPath: building)
            throw ReleaseStoreError.file(operation: "store", path: final, reason: "\(error)")
        }
    }

    public func discard(app: String, version: String) throws {
        try ReleaseStoreError.validate(app)
        try ReleaseStoreError.validate(version)
        let building = buildingDirectory(app: app, version: version)
        guard FileManager.default.fileExists(atPath: building) else { return }
        try remove(building)
    }

    @discardableResult
    public func prune(app: String, keep: Int, protecting: Set<String>) throws -> [String] {
        let removed = try releases(app: app).prunable(keep: keep, protecting: protecting).map(\.version)
        for version in removed {
            // Renamed out of sight first, so a half-deleted folder never passes for a release.
            let doomed = "\(root)/\(app)/.removing-\(version)-\(UInt32.random(in: 0 ... .max))"
            guard rename(directory(app: app, version: version), doomed) == 0 else {
                throw ReleaseStoreError.file(operation: "rename", path: directory(app: app, version: version),
                                             reason: String(cString: strerror(errno)))
            }
            try remove(doomed)
        }
        removeLeftovers(app: app)
        return removed
    }

    private func buildingDirectory(app: String, version: String) -> String {
        "\(root)/\(app)/.building-\(version)"
    }

    /// Removes `.removing-` folders and `.building-` folders old enough to be left over from a crash.
    private func removeLeftovers(app: String) {
        let folder = "\(root)/\(app)"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for entry in entries where entry.hasPrefix(".removing-") || entry.hasPrefix(".building-") {
            let path = "\(folder)/\(entry)"
            if entry.hasPrefix(".building-") {
                let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate]) as? Date
                guard let modified, Date().timeIntervalSince(modified) > staleBuildAge else { continue }
            }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    private func makeDirectory(_ path: String) throws(ReleaseStoreError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .file(operation: "mkdir", path: path, reason: error.localizedDescription)
        }
    }

    private func remove(_ path: String) throws(ReleaseStoreError) {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw .file(operation: "remove", path: path, reason: error.localizedDescription)
        }
    }

    /// Copies a file and fsyncs the copy, so the rename that publishes it cannot outrun its bytes.
    private func copyDurably(from source: String, to destination: String) throws(ReleaseStoreError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .file(operation: "open", path: source, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard output >= 0 else { throw .file(operation: "create", path: destination, reason: String(cString: strerror(errno))) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw .file(operation: "read", path: source, reason: String(cString: strerror(errno))) }
            if count == 0 { break }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { write(output, $0.baseAddress! + offset, count - offset) }
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { throw .file(operation: "write", path: destination, reason: String(cString: strerror(errno))) }
                offset += written
            }
        }
        guard fsync(output) == 0 else { throw .file(operation: "fsync", path: destination, reason: String(cString: strerror(errno))) }
    }
}
