import CLibGit2
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Runs blocking libgit2 work on threads of its own, never on Swift's cooperative pool, with a deadline.
///
/// libgit2 1.5 has no network timeout: a remote that accepts and never answers blocks its `recv` for good, and
/// no callback runs to notice a cancellation. So when the deadline passes or the task is cancelled, the waiting
/// caller is answered at once, and the worker thread is sent `SIGURG` (with a handler installed without
/// `SA_RESTART`) until the blocked call returns `EINTR` and libgit2 gives up.
enum GitWorker {
    /// libgit2 is set up once per process, before the first call.
    private static let initialised: Int32 = git_libgit2_init()

    /// `SIGURG`: ignored by default, so a stray one never ends the process; installed once.
    private static let interruptInstalled: Bool = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0  // no SA_RESTART: the blocked system call returns EINTR
        return sigaction(SIGURG, &action, nil) == 0
    }()

    private static let queue = DispatchQueue(label: "pushdeploy.git", qos: .userInitiated, attributes: .concurrent)

    /// Runs `work` on a git thread and waits for it, at most `timeout`; cancelling the task or the deadline sets the
    /// flag `work`'s callbacks poll, and interrupts a call blocked on the network.
    static func run<T: Sendable>(timeout: Duration? = nil,
                                 _ work: @escaping @Sendable (GitCancellation) throws -> T) async throws -> T {
        _ = initialised
        _ = interruptInstalled
        let call = GitCall<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                call.waiting(continuation)
                if let timeout {
                    queue.asyncAfter(deadline: .now() + .milliseconds(Int(timeout.milliseconds))) {
                        call.stop(with: GitError(.timedOut, "the fetch did not finish within \(DurationParser.format(timeout)) "
                                                 + "(repository.timeout): the remote is slow or does not answer"))
                    }
                }
                queue.async { call.execute(work) }
            }
        } onCancel: {
            call.stop(with: CancellationError())
        }
    }
}

/// One git call: who waits for it, the thread running it, and whether it was stopped.
private final class GitCall<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var thread: pthread_t?
        var stopped = false
    }

    private let state = Mutex(State())
    let cancellation = GitCancellation()

    func waiting(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func execute(_ work: @Sendable (GitCancellation) throws -> T) {
        let stoppedEarly = state.withLock { state in
            state.thread = pthread_self()
            return state.stopped
        }
        // Dispatch's threads block signals; this one must take SIGURG while it runs libgit2, and only then.
        var interrupt = sigset_t()
        sigemptyset(&interrupt)
        sigaddset(&interrupt, SIGURG)
        var previous = sigset_t()
        pthread_sigmask(SIG_UNBLOCK, &interrupt, &previous)
        let result: Result<T, any Error> = stoppedEarly ? .failure(CancellationError()) : Result { try work(cancellation) }
        let continuation = state.withLock { state in
            state.thread = nil
            defer { state.continuation = nil }
            return state.continuation
        }
        // A SIGURG sent just before `thread` was cleared is delivered here, to the no-op handler, not to the next job.
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        continuation?.resume(with: result)
    }

    /// Answers the caller with `error` now, and interrupts the worker thread until its call returns.
    func stop(with error: any Error) {
        cancellation.cancel()
        let continuation = state.withLock { state in
            state.stopped = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(throwing: error)
        DispatchQueue.global().async { [self] in
            // Every 50 ms, for up to a minute: a signal between two system calls is lost, the next one lands.
            for _ in 0..<1200 {
                let signalled = state.withLock { state -> Bool in
                    guard let thread = state.thread else { return false }
                    pthread_kill(thread, SIGURG)
                    return true
                }
                if !signalled { return }
                usleep(50_000)
            }
        }
    }
}
