import Foundation

/// Why an instance was not found healthy.
public enum HealthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One HTTP request got no answer: refused, timed out, closed early, or malformed.
    case request(url: String, reason: String)
    /// The instance's process ended before it answered as healthy.
    case processExited(port: Int, lastStatus: Int?, lastError: String?)
    /// `startup_timeout` passed without a healthy answer.
    case timedOut(after: Duration, lastStatus: Int?, lastError: String?)

    public var description: String {
        switch self {
        case let .request(url, reason):
            "GET \(url): \(reason)"
        case let .processExited(port, status, error):
            "the instance on port \(port) exited before it was healthy" + Self.last(status, error)
        case let .timedOut(after, status, error):
            "not healthy within \(DurationParser.format(after))" + Self.last(status, error)
        }
    }

    private static func last(_ status: Int?, _ error: String?) -> String {
        switch (status, error) {
        case let (status?, error?): " (last answer: status \(status); \(error))"
        case let (status?, nil): " (last answer: status \(status))"
        case let (nil, error?): " (last attempt: \(error))"
        case (nil, nil): ""
        }
    }
}
