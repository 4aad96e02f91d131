import Foundation

/// Why traffic did not move; every case after the write means the old include file was put back.
public enum TrafficError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The app has no `nginx` section.
    case notConfigured(app: String)
    /// The ports cannot be written as an include file for the app's strategy.
    case invalidPorts(app: String, ports: [Int], reason: String)
    /// `verify_url` is not an `http://` URL the switch can request.
    case invalidVerifyURL(url: String, reason: String)
    /// The include file could not be read or replaced; nginx was not touched.
    case fileFailed(path: String, reason: String)
    /// `nginx -t` rejected the new file (or did not run); `output` is what nginx said.
    case testFailed(command: String, reason: String, output: [String])
    /// The reload command failed; the old file was put back and reloaded.
    case reloadFailed(command: String, reason: String, output: [String])
    /// nginx did not answer from the new release in time; the old file was put back and reloaded.
    case notConfirmed(url: String, expected: String, waited: Duration, lastAnswer: String)
    /// One of the failures above, and then putting the old file back failed too: nginx needs a look now.
    indirect case restoreFailed(after: TrafficError, reason: String)

    public var description: String {
        switch self {
        case .notConfigured, .invalidPorts, .invalidVerifyURL: headline
        case .fileFailed: headline + "; traffic unchanged"
        case .testFailed: headline + "; old file put back, traffic unchanged" + Self.block(output)
        case .reloadFailed, .notConfirmed: headline + "; old file put back and reloaded" + Self.block(output)
        case let .restoreFailed(after, reason):
            after.headline + "; then putting the old include file back failed: \(reason); check nginx now" + Self.block(after.output)
        }
    }

    /// What went wrong, without what was done about it.
    private var headline: String {
        switch self {
        case let .notConfigured(app):
            "app \(app) has no nginx section: nothing to switch"
        case let .invalidPorts(app, ports, reason):
            "cannot route \(app) to \(ports.isEmpty ? "no port" : ports.map(String.init).joined(separator: ", ")): \(reason)"
        case let .invalidVerifyURL(url, reason):
            "nginx.verify_url \(url): \(reason)"
        case let .fileFailed(path, reason):
            "include file \(path): \(reason)"
        case let .testFailed(command, reason, _):
            "\(command) rejected the new include file (\(reason))"
        case let .reloadFailed(command, reason, _):
            "\(command) failed (\(reason))"
        case let .notConfirmed(url, expected, waited, lastAnswer):
            "\(url) did not answer from \(expected) within \(DurationParser.format(waited)) (last answer: \(lastAnswer))"
        case let .restoreFailed(after, _):
            after.headline
        }
    }

    /// nginx's own words, when it said something.
    private var output: [String] {
        switch self {
        case let .testFailed(_, _, output), let .reloadFailed(_, _, output): output
        default: []
        }
    }

    private static func block(_ output: [String]) -> String {
        output.isEmpty ? "" : ":\n" + output.map { "  " + $0 }.joined(separator: "\n")
    }
}
