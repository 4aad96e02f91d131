import CLibGit2
import Foundation

/// Brings an app's checkout to an exact commit through libgit2: clone when absent, fetch, force checkout.
public struct GitSourceFetcher: SourceFetcher {
    /// How many times libgit2 may ask for a credential before a fetch gives up (a refused one is asked again).
    public var maxAuthAttempts: Int

    /// A fetcher that gives up after `maxAuthAttempts` refused credentials.
    public init(maxAuthAttempts: Int = 3) {
        self.maxAuthAttempts = maxAuthAttempts
    }

    /// Clones or fetches, then force-checks-out the requested commit (or the branch head), on a git thread.
    public func fetch(_ request: FetchRequest, log: any DeploymentLog) async throws -> FetchedSource {
        let attempts = maxAuthAttempts
        return try await GitWorker.run(timeout: request.repository.timeout) { cancellation in
            try GitCheckoutJob(request: request, log: log, cancellation: cancellation, maxAuthAttempts: attempts).run()
        }
    }
}

/// One fetch request, carried out synchronously on a git thread.
struct GitCheckoutJob {
    static let remote = "origin"
    /// Forced, so a branch whose history was rewritten (a force-push) simply moves.
    static let refspecs = ["+refs/heads/*:refs/remotes/origin/*"]

    let request: FetchRequest
    let log: any DeploymentLog
    let cancellation: GitCancellation
    let maxAuthAttempts: Int

    private var url: GitRemoteURL { GitRemoteURL(request.repository.url) }

    func run() throws -> FetchedSource {
        if url.transport == .local, let folder = url.localPath, !FileManager.default.fileExists(atPath: folder) {
            throw GitError(.repositoryNotFound, "repository not found: there is no folder \(folder)")
        }
        if let commit = request.commit, !(4 ... 40).contains(commit.count) || !commit.allSatisfy(\.isHexDigit) {
            throw GitError(.commitNotFound, "\(commit) is not a commit id (4 to 40 hex digits)")
        }
        let credentials = try GitCredentials(request.repository, maxAttempts: maxAuthAttempts)
        let path = request.checkoutPath
        if FileManager.default.fileExists(atPath: path) {
            do {
                return try sync(GitRepository.open(at: path), credentials: credentials)
            } catch let error as GitError where Self.isDamage(error) {
                log.line("the checkout at \(path) is unusable (\(error)); cloning afresh")
            }
        }
        return try cloneAndSwap(credentials: credentials)
    }

    /// Errors that say the checkout itself is broken, as opposed to the remote, the network or the request.
    static func isDamage(_ error: GitError) -> Bool {
        if error.reason == .invalidCheckout { return true }
        let damaged: [git_error_t] = [GIT_ERROR_REPOSITORY, GIT_ERROR_ODB, GIT_ERROR_INDEX, GIT_ERROR_OBJECT,
                                      GIT_ERROR_REFERENCE, GIT_ERROR_ZLIB, GIT_ERROR_CONFIG]
        return error.reason == .failed && damaged.contains { Int32($0.rawValue) == error.errorClass }
    }

    /// Clones into a fresh folder beside the checkout, then puts it in the checkout's place.
    ///
    /// A failed clone leaves nothing behind, and a broken checkout is replaced only by a complete one.
    private func cloneAndSwap(credentials: GitCredentials) throws -> FetchedSource {
        let target = URL(fileURLWithPath: request.checkoutPath)
        let parent = target.deletingLastPathComponent().path
        let name = target.lastPathComponent
        let token = UInt32.random(in: 0 ... .max)
        let fresh = "\(parent)/.\(name).clone-\(token)"
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        log.line("cloning \(url.redacted) into \(request.checkoutPath)")
        let source: FetchedSource
        do {
            // The repository is freed at the end of this statement, before its folder moves.
            source = try sync(GitRepository.create(at: fresh), credentials: credentials)
            if FileManager.default.fileExists(atPath: request.checkoutPath) {
                let aside = "\(parent)/.\(name).old-\(token)"
                try FileManager.default.moveItem(atPath: request.checkoutPath, toPath: aside)
                try FileManager.default.moveItem(atPath: fresh, toPath: request.checkoutPath)
                try? FileManager.default.removeItem(atPath: aside)
            } else {
                try FileManager.default.moveItem(atPath: fresh, toPath: request.checkoutPath)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: fresh)
            throw error
        }
        return source
    }

    private func sync(_ repository: GitRepository, credentials: GitCredentials) throws -> FetchedSource {
        if repository.removeStaleIndexLock() { log.line("removed a stale index.lock in \(request.checkoutPath)") }
        if let previous = try repository.setRemote(Self.remote, url: request.repository.url), !previous.isEmpty {
            log.line("remote \(Self.remote) moved from \(GitRemoteURL(previous).redacted) to \(url.redacted)")
        }
        let transfer = GitTransfer(url: url, credentials: credentials, cancellation: cancellation, log: log)
        let stats = try repository.fetch(url: request.repository.url, refspecs: Self.refspecs, transfer: transfer)
        log.line("fetched \(stats.receivedObjects) objects (\(Self.size(stats.receivedBytes))) from \(url.redacted) "
                 + "in \(String(format: "%.2f", stats.seconds)) s")
        let commit = try resolve(repository)
        if cancellation.isCancelled { throw CancellationError() }
        let started = ContinuousClock.now
        try repository.forceCheckout(commit)
        let summary = try repository.summary(of: commit)
        let short = String(commit.description.prefix(7))
        log.line("checked out \(short)" + (summary.map { " (\($0))" } ?? "")
                 + " in \(String(format: "%.2f", (ContinuousClock.now - started).seconds)) s")
        let submodules = try repository.updateSubmodules(mainURL: url, credentials: credentials,
                                                         cancellation: cancellation, log: log)
        if submodules > 0 { log.line("updated \(submodules) submodule\(submodules == 1 ? "" : "s")") }
        return FetchedSource(commit: commit.description, checkoutPath: request.checkoutPath, summary: summary)
    }

    private func resolve(_ repository: GitRepository) throws(GitError) -> GitObjectID {
        if let id = request.commit {
            guard let commit = try repository.commit(matching: id) else {
                throw GitError(.commitNotFound, "commit \(id) not found on \(Self.remote) (\(url.redacted))")
            }
            return commit
        }
        guard let head = try repository.target(ofReference: "refs/remotes/\(Self.remote)/\(request.branch)") else {
            throw GitError(.branchNotFound, "branch \(request.branch) not found on \(Self.remote) (\(url.redacted))")
        }
        return head
    }

    private static func size(_ bytes: Int) -> String {
        bytes < 1024 * 1024 ? "\(bytes / 1024) KiB" : String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}
