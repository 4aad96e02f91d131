#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Turns the configured version pattern into a release version.
///
/// `{timestamp}` is the UTC time as `yyyyMMddHHmmss` (the classic `1.0.1-SNAPSHOT-20250102030405`),
/// `{commit}` the full commit id and `{short_commit}` its first 7 characters.
public struct ReleaseVersion: Sendable {
    public var pattern: String

    public init(pattern: String) {
        self.pattern = pattern
    }

    /// True when the pattern changes every second, so that waiting gives a fresh version.
    public var isTimestamped: Bool { pattern.contains("{timestamp}") }

    /// The version for a build of `commit` started at `date`.
    public func render(commit: String, at date: Date) -> String {
        pattern
            .replacingOccurrences(of: "{timestamp}", with: Self.timestamp(date))
            .replacingOccurrences(of: "{short_commit}", with: String(commit.prefix(7)))
            .replacingOccurrences(of: "{commit}", with: commit)
    }

    /// `yyyyMMddHHmmss` in UTC.
    public static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d%02d%02d%02d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}
