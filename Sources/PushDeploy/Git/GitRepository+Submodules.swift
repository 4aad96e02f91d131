import CLibGit2
import Foundation

extension GitRepository {
    /// Initialises and updates every submodule, and theirs, to the commits the checkout records; returns how many.
    ///
    /// A submodule on another host than the main repository gets no token or key: a credential is sent only
    /// where it was configured for.
    func updateSubmodules(mainURL: GitRemoteURL, credentials: GitCredentials, cancellation: GitCancellation,
                          log: (any DeploymentLog)?, depth: Int = 0) throws -> Int {
        var updated = 0
        for name in try submoduleNames() {
            if cancellation.isCancelled { throw CancellationError() }
            var submodule: OpaquePointer?
            try gitCheck(git_submodule_lookup(&submodule, pointer, name), "look up submodule \(name)")
            defer { git_submodule_free(submodule) }
            let url = try resolvedURL(of: submodule, name: name)
            var scoped = credentials
            if url.host != mainURL.host {
                scoped.token = nil
                scoped.sshKey = nil
            }
            let transfer = GitTransfer(url: url, credentials: scoped, cancellation: cancellation, log: log)
            var options = git_submodule_update_options()
            git_submodule_update_options_init(&options, UInt32(GIT_SUBMODULE_UPDATE_OPTIONS_VERSION))
            options.checkout_opts.checkout_strategy = GIT_CHECKOUT_FORCE.rawValue | GIT_CHECKOUT_REMOVE_UNTRACKED.rawValue
            let code = transfer.withFetchOptions { fetch in
                options.fetch_opts = fetch
                return git_submodule_update(submodule, 1, &options)
            }
            if code < 0 { throw transfer.error(code: code, operation: "update submodule \(name) from \(url.redacted)") }
            updated += 1
            guard depth < 4 else { continue }
            var opened: OpaquePointer?
            try gitCheck(git_submodule_open(&opened, submodule), "open submodule \(name)")
            let nested = GitRepository(owning: opened!, path: path + "/" + name)
            updated += try nested.updateSubmodules(mainURL: mainURL, credentials: credentials, cancellation: cancellation,
                                                   log: log, depth: depth + 1)
        }
        return updated
    }

    /// The submodule's URL with a relative one (`../lib.git`) resolved against the superproject's remote.
    private func resolvedURL(of submodule: OpaquePointer?, name: String) throws(GitError) -> GitRemoteURL {
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        try gitCheck(git_submodule_resolve_url(&buffer, pointer, git_submodule_url(submodule)), "resolve the URL of submodule \(name)")
        return GitRemoteURL(buffer.ptr.map { String(cString: $0) } ?? "")
    }

    private func submoduleNames() throws(GitError) -> [String] {
        final class Names { var list: [String] = [] }
        let names = Names()
        let code = withExtendedLifetime(names) {
            git_submodule_foreach(pointer, { _, name, payload in
                Unmanaged<Names>.fromOpaque(payload!).takeUnretainedValue().list.append(String(cString: name!))
                return 0
            }, Unmanaged.passUnretained(names).toOpaque())
        }
        try gitCheck(code, "list submodules")
        return names.list
    }
}
