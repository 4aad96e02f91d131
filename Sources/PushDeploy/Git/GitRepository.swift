import CLibGit2
import Foundation

/// A commit id: 20 bytes, printed as 40 lowercase hex digits.
struct GitObjectID: Sendable, Equatable, CustomStringConvertible {
    var raw: git_oid

    init(_ raw: git_oid) { self.raw = raw }

    static func == (lhs: Self, rhs: Self) -> Bool {
        var l = lhs.raw, r = rhs.raw
        return git_oid_equal(&l, &r) != 0
    }

    var description: String {
        var oid = raw
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_fmt(&buffer, &oid)
        return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// What a fetch brought in.
struct GitFetchStats: Sendable {
    var receivedObjects: Int
    var receivedBytes: Int
    var seconds: Double
}

/// A checkout opened through libgit2. It owns its `git_repository*` and frees it in `deinit`.
///
/// Not `Sendable`: it is made, used and dropped inside one job on a git thread (see `GitWorker`).
final class GitRepository {
    let pointer: OpaquePointer
    /// The working folder.
    let path: String

    /// Takes ownership of an open repository: this object frees it.
    init(owning pointer: OpaquePointer, path: String) {
        self.pointer = pointer
        self.path = path
    }

    deinit { git_repository_free(pointer) }

    /// Opens the checkout at exactly `path`, never a repository in a parent folder.
    static func open(at path: String) throws(GitError) -> GitRepository {
        var repository: OpaquePointer?
        try gitCheck(git_repository_open_ext(&repository, path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil),
                     "open repository \(path)")
        let opened = GitRepository(owning: repository!, path: path)
        guard git_repository_is_bare(repository) == 0, let workdir = git_repository_workdir(repository) else {
            throw GitError(.invalidCheckout, "\(path) is a bare repository, not a checkout")
        }
        let expected = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        let actual = URL(fileURLWithPath: String(cString: workdir)).standardizedFileURL.resolvingSymlinksInPath().path
        guard expected == actual else {
            throw GitError(.invalidCheckout, "\(path) belongs to the repository at \(actual)")
        }
        return opened
    }

    /// Creates an empty repository with a working folder at `path`.
    static func create(at path: String) throws(GitError) -> GitRepository {
        var repository: OpaquePointer?
        try gitCheck(git_repository_init(&repository, path, 0), "create repository \(path)")
        return GitRepository(owning: repository!, path: path)
    }

    /// Makes the remote `name` in the checkout's config point at `url`; returns the URL it had before when it
    /// changed (or "" when new). The fetch itself does not read it; it is there for people who look at the checkout.
    ///
    /// Reads the config entry directly instead of through `git_remote_lookup`: libgit2 1.5 (Debian's) leaks a
    /// PCRE2 match block of about 20 KB for every config entry its insteadOf scan does not match (fixed upstream
    /// in 1.6, libgit2#6382), which a long-running server would pay on every deployment.
    @discardableResult
    func setRemote(_ name: String, url: String) throws(GitError) -> String? {
        let current = try configString("remote.\(name).url")
        guard current != url else { return nil }
        guard let current else {
            var remote: OpaquePointer?
            var options = remoteOptions(flags: GIT_REMOTE_CREATE_SKIP_INSTEADOF)
            let code = name.withCString { name in
                options.name = name
                return git_remote_create_with_opts(&remote, url, &options)
            }
            try gitCheck(code, "create remote \(name)")
            git_remote_free(remote)
            return ""
        }
        try gitCheck(git_remote_set_url(pointer, name, url), "set the URL of remote \(name)")
        return current
    }

    /// Fetches `refspecs` from `url`, pruning branches the remote no longer has.
    ///
    /// The remote is an in-memory one that skips the insteadOf scan (see `setRemote` for the leak this avoids);
    /// the refspecs name where the branches land.
    func fetch(url: String, refspecs: [String], transfer: GitTransfer) throws -> GitFetchStats {
        var remote: OpaquePointer?
        var options = remoteOptions(flags: GIT_REMOTE_CREATE_SKIP_INSTEADOF, GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC)
        try gitCheck(git_remote_create_with_opts(&remote, url, &options), "set up the remote \(transfer.url.redacted)")
        defer { git_remote_free(remote) }
        let started = ContinuousClock.now
        let code = transfer.withFetchOptions { options in
            withStringArray(refspecs) { array in git_remote_fetch(remote, &array, &options, "fetch") }
        }
        if code < 0 { throw transfer.error(code: code, operation: "fetch from \(transfer.url.redacted)") }
        let stats = git_remote_stats(remote)!.pointee
        return GitFetchStats(receivedObjects: Int(stats.received_objects), receivedBytes: Int(stats.received_bytes),
                             seconds: (ContinuousClock.now - started).seconds)
    }

    /// A config value of the checkout (its own, global or system config), or nil when unset.
    func configString(_ key: String) throws(GitError) -> String? {
        var config: OpaquePointer?
        try gitCheck(git_repository_config_snapshot(&config, pointer), "read the config of \(path)")
        defer { git_config_free(config) }
        var entry: UnsafeMutablePointer<git_config_entry>?
        let code = git_config_get_entry(&entry, config, key)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try gitCheck(code, "read \(key) in the config of \(path)")
        defer { git_config_entry_free(entry) }
        return entry.flatMap { $0.pointee.value.map { String(cString: $0) } }
    }

    private func remoteOptions(flags: git_remote_create_flags...) -> git_remote_create_options {
        var options = git_remote_create_options()
        git_remote_create_options_init(&options, UInt32(GIT_REMOTE_CREATE_OPTIONS_VERSION))
        options.repository = pointer
        options.flags = flags.reduce(0) { $0 | $1.rawValue }
        return options
    }

    /// The commit `id` names: a full id, or an unambiguous abbreviation of at least 4 hex digits; nil when absent.
    func commit(matching id: String) throws(GitError) -> GitObjectID? {
        var oid = git_oid()
        guard id.count >= 4, id.count <= 40, id.allSatisfy(\.isHexDigit),
              git_oid_fromstrn(&oid, id, id.utf8.count) == 0 else {
            throw GitError(.commitNotFound, "\(id) is not a commit id (4 to 40 hex digits)")
        }
        var commit: OpaquePointer?
        let code = git_commit_lookup_prefix(&commit, pointer, &oid, id.utf8.count)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        if code == GIT_EAMBIGUOUS.rawValue {
            throw GitError(code: code, class: 0, message: "commit id \(id) is ambiguous: give more digits", reason: .commitNotFound)
        }
        try gitCheck(code, "look up commit \(id)")
        defer { git_commit_free(commit) }
        return GitObjectID(git_commit_id(commit)!.pointee)
    }

    /// The commit a reference (such as `refs/remotes/origin/main`) points at; nil when it does not exist.
    func target(ofReference name: String) throws(GitError) -> GitObjectID? {
        var oid = git_oid()
        let code = git_reference_name_to_id(&oid, pointer, name)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try gitCheck(code, "resolve \(name)")
        return GitObjectID(oid)
    }

    /// The first line of a commit's message.
    func summary(of id: GitObjectID) throws(GitError) -> String? {
        var oid = id.raw
        var commit: OpaquePointer?
        try gitCheck(git_commit_lookup(&commit, pointer, &oid), "look up commit \(id)")
        defer { git_commit_free(commit) }
        return git_commit_summary(commit).map { String(cString: $0) }
    }

    /// Makes the working folder exactly the commit's tree, with HEAD detached at it.
    ///
    /// Local changes and untracked files go; ignored files (build output, caches) stay, as with `git clean -fd`.
    func forceCheckout(_ id: GitObjectID) throws(GitError) {
        var oid = id.raw
        var commit: OpaquePointer?
        try gitCheck(git_commit_lookup(&commit, pointer, &oid), "look up commit \(id)")
        defer { git_commit_free(commit) }
        var options = git_checkout_options()
        git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION))
        options.checkout_strategy = GIT_CHECKOUT_FORCE.rawValue | GIT_CHECKOUT_REMOVE_UNTRACKED.rawValue
        try gitCheck(git_checkout_tree(pointer, commit, &options), "check out \(id)")
        try gitCheck(git_repository_set_head_detached(pointer, &oid), "detach HEAD at \(id)")
    }

    /// Removes an index lock left by a process that died while holding it.
    ///
    /// Safe because only one deployment of an app runs at a time and nothing else writes this checkout.
    func removeStaleIndexLock() -> Bool {
        let lock = String(cString: git_repository_path(pointer)) + "index.lock"
        return unlink(lock) == 0
    }
}

/// Calls `body` with a `git_strarray` over `strings`, valid only for the call.
private func withStringArray<T>(_ strings: [String], _ body: (inout git_strarray) throws -> T) rethrows -> T {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    var pointers = copies
    return try pointers.withUnsafeMutableBufferPointer { buffer in
        var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
        return try body(&array)
    }
}
