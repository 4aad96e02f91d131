import CLibGit2
import Dispatch

/// Runs blocking libgit2 work on threads of its own, never on Swift's cooperative pool.
enum GitWorker {
    /// libgit2 is set up once per process, before the first call.
    private static let initialised: Int32 = git_libgit2_init()

    private static let queue = DispatchQueue(label: "pushdeploy.git", qos: .userInitiated, attributes: .concurrent)

    /// Runs `work` on a git thread and waits for it; cancelling the task sets the flag `work` polls.
    static func run<T: Sendable>(_ work: @escaping @Sendable (GitCancellation) throws -> T) async throws -> T {
        _ = initialised
        let cancellation = GitCancellation()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async {
                    continuation.resume(with: Result { try work(cancellation) })
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
    }
}
