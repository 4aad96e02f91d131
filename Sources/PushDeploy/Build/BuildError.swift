import Foundation

/// Why a build produced no release. The live release is untouched in every case.
public enum BuildError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The build command is empty or cannot be started.
    case couldNotStart(command: String, reason: String)
    /// The build command exited unsuccessfully.
    case failed(status: CommandStatus, outputTail: [String])
    /// The build ran past `build.timeout` and was stopped with its whole process tree.
    case timedOut(after: Duration, outputTail: [String])
    /// No fresh jar matched the artifact glob; `candidates` are the files that matched and why each was passed over.
    case artifactNotFound(glob: String, candidates: [String])
    /// The version pattern gave something that cannot name a release folder.
    case invalidVersion(String)
    /// No free version could be found (the same version kept being taken).
    case versionUnavailable(String)

    public var description: String {
        switch self {
        case let .couldNotStart(command, reason):
            "build could not start: \(command): \(reason)"
        case let .failed(status, tail):
            "build failed with \(status)" + CommandError.tailText(tail)
        case let .timedOut(after, tail):
            "build timed out after \(DurationParser.format(after)) and was stopped" + CommandError.tailText(tail)
        case let .artifactNotFound(glob, candidates):
            candidates.isEmpty
                ? "the build wrote no jar matching \(glob)"
                : "the build wrote no jar matching \(glob); passed over: \(candidates.joined(separator: ", "))"
        case let .invalidVersion(version):
            "version \"\(version)\" cannot name a release (use letters, digits, . _ + -)"
        case let .versionUnavailable(version):
            "could not reserve a release version near \(version)"
        }
    }

    /// The last lines of build output, when the error has them.
    public var outputTail: [String] {
        switch self {
        case let .failed(_, tail), let .timedOut(_, tail): tail
        default: []
        }
    }
}
