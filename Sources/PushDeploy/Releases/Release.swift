import Foundation

/// A built, stored release: `releases/<app>/<version>/app.jar` and its `release.json`.
public struct Release: Codable, Sendable, Equatable, Hashable {
    public var app: String
    public var version: String
    public var commit: String
    public var builtAt: Date
    public var buildSeconds: Double
    /// SHA-256 of `app.jar`, lowercase hex.
    public var sha256: String

    public init(app: String, version: String, commit: String, builtAt: Date, buildSeconds: Double, sha256: String) {
        self.app = app
        self.version = version
        self.commit = commit
        self.builtAt = builtAt
        self.buildSeconds = buildSeconds
        self.sha256 = sha256
    }
}
