import Foundation

/// Keeps built releases: the jar and its `release.json`, one folder per version.
///
/// A version is reserved before its build starts and stored only when the build succeeded, so a failed or
/// cancelled build never leaves a release behind and two builds never get the same version.
public protocol ReleaseStore: Sendable {
    /// The stored releases of an app, newest first.
    func releases(app: String) async throws -> [Release]
    /// One stored release, or nil when it was never stored or has been pruned.
    func release(app: String, version: String) async throws -> Release?
    /// Where the jar of a stored release lives.
    func jarPath(app: String, version: String) -> String
    /// Claims a version for a build in progress; false when it is already stored or being built.
    func reserve(app: String, version: String) async throws -> Bool
    /// Copies the jar in and records the release; it appears whole or not at all.
    func store(_ release: Release, jarAt path: String) async throws
    /// Gives up a reservation whose build did not succeed, removing whatever it held.
    func discard(app: String, version: String) async throws
    /// Removes all but the newest `keep` releases, never one named in `protecting`; returns the versions removed.
    @discardableResult
    func prune(app: String, keep: Int, protecting: Set<String>) async throws -> [String]
}

/// Why the release store could not do what was asked.
public enum ReleaseStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An app or version that cannot be a folder name (empty, a path, or hidden).
    case invalidName(String)
    /// The version is already stored; versions are never overwritten.
    case alreadyStored(app: String, version: String)
    /// A file operation failed.
    case file(operation: String, path: String, reason: String)
    /// A `release.json` that cannot be read.
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidName(name): "\"\(name)\" cannot name an app or a release (use letters, digits, . _ + -)"
        case let .alreadyStored(app, version): "release \(version) of \(app) is already stored"
        case let .file(operation, path, reason): "\(operation) \(path): \(reason)"
        case let .unreadable(path, reason): "cannot read \(path): \(reason)"
        }
    }

    /// Checks that `name` is safe as one path component.
    static func validate(_ name: String) throws(ReleaseStoreError) {
        let allowed = name.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0" ... "9").contains($0))) || "._+-".unicodeScalars.contains($0)
        }
        guard !name.isEmpty, allowed, !name.hasPrefix("."), name.count <= 200 else { throw .invalidName(name) }
    }
}

extension Array where Element == Release {
    /// Newest first: by build time, then by version.
    func newestFirst() -> [Release] {
        sorted { ($0.builtAt, $0.version) > ($1.builtAt, $1.version) }
    }

    /// The versions `prune` removes: beyond the newest `keep`, and not protected.
    func prunable(keep: Int, protecting: Set<String>) -> [Release] {
        newestFirst().dropFirst(Swift.max(keep, 1)).filter { !protecting.contains($0.version) }
    }
}
