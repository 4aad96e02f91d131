import CLibGit2
import Foundation

/// A git operation that failed: what went wrong for the operator, and libgit2's own code, class and message.
public struct GitError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is, for callers that react to some of them.
    public enum Reason: String, Sendable, Equatable {
        /// Any other libgit2 failure.
        case failed
        /// The server refused the credential, or asked for one that is not configured.
        case authenticationFailed
        /// The ssh host key is not in known_hosts, or differs from it.
        case hostKeyRejected
        /// The repository URL points at nothing (a missing folder, an unknown protocol).
        case repositoryNotFound
        /// The requested commit is on no fetched branch.
        case commitNotFound
        /// The branch does not exist on the remote.
        case branchNotFound
        /// The checkout folder exists but is not usable.
        case invalidCheckout
        /// The remote did not answer within `repository.timeout`.
        case timedOut
    }

    /// What kind of failure this is.
    public var reason: Reason
    /// libgit2's `git_error_code` (such as `GIT_ENOTFOUND`, -3); 0 when the error is pushdeploy's own.
    public var code: Int32
    /// libgit2's `git_error_t` class (such as `GIT_ERROR_NET`, 12); 0 when there is none.
    public var errorClass: Int32
    /// The sentence a person reads.
    public var message: String

    /// An error as libgit2 reported it.
    public init(code: Int32, class errorClass: Int32, message: String, reason: Reason = .failed) {
        self.reason = reason
        self.code = code
        self.errorClass = errorClass
        self.message = message
    }

    /// An error of pushdeploy's own, with no libgit2 code behind it.
    public init(_ reason: Reason, _ message: String) {
        self.init(code: 0, class: 0, message: message, reason: reason)
    }

    /// The name of libgit2's error class (`net`, `ssh`, `odb`, ...).
    public var className: String {
        let names = ["none", "nomemory", "os", "invalid", "reference", "zlib", "repository", "config", "regex", "odb",
                     "index", "object", "net", "tag", "tree", "indexer", "ssl", "submodule", "thread", "stash",
                     "checkout", "fetchhead", "merge", "ssh", "filter", "revert", "callback", "cherrypick", "describe",
                     "rebase", "filesystem", "patch", "worktree", "sha1", "http", "internal"]
        return names.indices.contains(Int(errorClass)) ? names[Int(errorClass)] : "class \(errorClass)"
    }

    public var description: String {
        errorClass == 0 ? message : "\(message) (libgit2 \(className) error \(code))"
    }

    /// The error libgit2 just recorded on this thread for a call that returned `code`.
    ///
    /// Must run on the thread that made the call, right after it: `git_error_last` is thread-local.
    static func last(code: Int32, operation: String) -> GitError {
        let (errorClass, detail) = lastDetail()
        return GitError(code: code, class: errorClass, message: "\(operation): \(detail)")
    }

    /// libgit2's class and message for the last error on this thread.
    static func lastDetail() -> (errorClass: Int32, message: String) {
        guard let last = git_error_last(), let text = last.pointee.message else { return (0, "unknown libgit2 error") }
        return (last.pointee.klass, String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Turns a libgit2 return code into a thrown `GitError`, read at once on the calling thread.
@discardableResult
func gitCheck(_ code: Int32, _ operation: @autoclosure () -> String) throws(GitError) -> Int32 {
    guard code < 0 else { return code }
    throw GitError.last(code: code, operation: operation())
}
