import CLibGit2
import Foundation
import Synchronization

/// How pushdeploy proves who it is to a remote and checks who the remote is.
struct GitCredentials: Sendable {
    var username: String?
    var token: Secret?
    var sshKey: String?
    var knownHosts: KnownHosts?
    var knownHostsPath: String?
    var insecureIgnoreHostKey: Bool
    /// How many times libgit2 may ask for a credential before the fetch gives up; a refused credential is asked again.
    var maxAttempts: Int

    /// The credentials a repository's config names; reads the known_hosts file when there is one.
    init(_ repository: RepositoryConfig, maxAttempts: Int) throws(GitError) {
        username = repository.username
        token = repository.token
        sshKey = repository.sshKey
        knownHostsPath = repository.knownHosts
        knownHosts = try repository.knownHosts.map { path throws(GitError) in try KnownHosts.load(path: path) }
        insecureIgnoreHostKey = repository.insecureIgnoreHostKey
        self.maxAttempts = maxAttempts
    }
}

/// A flag set when the task that asked for a git operation is cancelled; libgit2's callbacks poll it.
final class GitCancellation: Sendable {
    private let flag = Atomic<Bool>(false)

    func cancel() { flag.store(true, ordering: .relaxed) }

    var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// One network operation's state, shared with libgit2's callbacks through their payload pointer.
///
/// It is created, used and released on the one worker thread that runs the operation.
final class GitTransfer {
    let url: GitRemoteURL
    let credentials: GitCredentials
    let cancellation: GitCancellation
    let log: (any DeploymentLog)?
    /// How many times libgit2 asked for a credential.
    private(set) var attempts = 0
    /// Why a callback stopped the operation, when it did; it explains libgit2's bare error code.
    private var failure: GitError?
    private var lastReport = ContinuousClock.now

    init(url: GitRemoteURL, credentials: GitCredentials, cancellation: GitCancellation, log: (any DeploymentLog)?) {
        self.url = url
        self.credentials = credentials
        self.cancellation = cancellation
        self.log = log
    }

    /// Calls `body` with fetch options whose callbacks point at this transfer (which outlives the call).
    func withFetchOptions<T>(_ body: (inout git_fetch_options) throws -> T) rethrows -> T {
        var options = git_fetch_options()
        git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
        options.prune = GIT_FETCH_PRUNE
        configure(&options.callbacks)
        return try withExtendedLifetime(self) { try body(&options) }
    }

    /// Points libgit2's remote callbacks at this transfer.
    func configure(_ callbacks: inout git_remote_callbacks) {
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        callbacks.credentials = { out, url, usernameFromURL, allowed, payload in
            GitTransfer.from(payload).acquire(out, usernameFromURL: usernameFromURL.map { String(cString: $0) }, allowed: allowed)
        }
        callbacks.certificate_check = { cert, _, host, payload in
            GitTransfer.from(payload).check(cert, host: host.map { String(cString: $0) })
        }
        callbacks.transfer_progress = { stats, payload in
            GitTransfer.from(payload).progress(stats?.pointee)
        }
    }

    /// The error for a libgit2 call of this transfer that returned `code`; call it right after the call.
    func error(code: Int32, operation: String) -> any Error {
        let (errorClass, detail) = GitError.lastDetail()
        let raw = GitError(code: code, class: errorClass, message: "\(operation): \(detail)")
        if cancellation.isCancelled { return CancellationError() }
        if let failure { return failure }
        if detail.contains("unsupported URL protocol") {
            return GitError(code: raw.code, class: raw.errorClass,
                            message: "repository not found: \(url.redacted) is not a folder nor a URL git can reach",
                            reason: .repositoryNotFound)
        }
        if code == GIT_EAUTH.rawValue || detail.lowercased().contains("authentication") {
            return GitError(code: raw.code, class: raw.errorClass,
                            message: "authentication failed for \(url.redacted): \(detail)", reason: .authenticationFailed)
        }
        if code == GIT_ECERTIFICATE.rawValue {
            return GitError(code: raw.code, class: raw.errorClass,
                            message: "certificate of \(url.host ?? url.redacted) rejected: \(detail)", reason: .hostKeyRejected)
        }
        return raw
    }

    private static func from(_ payload: UnsafeMutableRawPointer?) -> GitTransfer {
        Unmanaged<GitTransfer>.fromOpaque(payload!).takeUnretainedValue()
    }

    private func stop(_ error: GitError, code: git_error_code) -> Int32 {
        failure = error
        return code.rawValue
    }

    private func acquire(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>?, usernameFromURL: String?,
                         allowed: UInt32) -> Int32 {
        if cancellation.isCancelled { return GIT_EUSER.rawValue }
        attempts += 1
        let what = credentials.sshKey != nil && url.transport == .ssh ? "ssh key \(credentials.sshKey!)" : "token"
        guard attempts <= credentials.maxAttempts else {
            return stop(GitError(code: GIT_EAUTH.rawValue, class: 0,
                                 message: "authentication failed for \(url.redacted): the server refused the \(what) "
                                     + "(\(credentials.maxAttempts) attempts)", reason: .authenticationFailed), code: GIT_EAUTH)
        }
        let user = usernameFromURL ?? credentials.username
        if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0, let key = credentials.sshKey {
            let publicKey = FileManager.default.fileExists(atPath: key + ".pub") ? key + ".pub" : nil
            return git_credential_ssh_key_new(out, user ?? "git", publicKey, key, nil)
        }
        if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let token = credentials.token {
            // GitHub accepts any user name with a token; GitLab wants `oauth2` (set `username` for it).
            return git_credential_userpass_plaintext_new(out, user ?? "x-access-token", token.text)
        }
        if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
            return git_credential_username_new(out, user ?? "git")
        }
        let missing = url.transport == .ssh ? "ssh key (ssh_key)" : "token (token_file or token_env)"
        return stop(GitError(code: GIT_EAUTH.rawValue, class: 0,
                             message: "authentication failed for \(url.redacted): the server asks for credentials "
                                 + "and the repository config has no \(missing)", reason: .authenticationFailed), code: GIT_EAUTH)
    }

    private func check(_ cert: UnsafeMutablePointer<git_cert>?, host: String?) -> Int32 {
        guard let cert, cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else {
            // TLS certificates: libgit2's own validation against the system trust store decides.
            return GIT_PASSTHROUGH.rawValue
        }
        if credentials.insecureIgnoreHostKey { return 0 }
        let host = host ?? url.host ?? "?"
        let hostKey = UnsafeRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
        guard hostKey.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let raw = hostKey.hostkey, hostKey.hostkey_len > 0 else {
            return stop(GitError(.hostKeyRejected, "host key of \(host) cannot be checked: libgit2 gave no raw key"),
                        code: GIT_ECERTIFICATE)
        }
        guard let knownHosts = credentials.knownHosts else {
            return stop(GitError(.hostKeyRejected, "host key of \(host) cannot be checked: no known_hosts file is configured "
                                     + "(set known_hosts, or insecure_ignore_host_key: true)"), code: GIT_ECERTIFICATE)
        }
        let blob = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(raw), count: hostKey.hostkey_len))
        let port = url.port ?? 22
        let name = KnownHosts.hostName(host, port: port)
        let type = KnownHosts.keyType(ofBlob: blob) ?? "unknown"
        let file = credentials.knownHostsPath ?? "known_hosts"
        switch knownHosts.verdict(host: host, port: port, key: blob) {
        case .trusted:
            return 0
        case .unknownHost:
            return stop(GitError(.hostKeyRejected, "host key of \(name) (\(type)) is not in \(file)"), code: GIT_ECERTIFICATE)
        case .mismatch:
            return stop(GitError(.hostKeyRejected, "host key of \(name) (\(type)) does not match \(file): "
                                     + "the server's key changed, or someone is in between"), code: GIT_ECERTIFICATE)
        case .revoked:
            return stop(GitError(.hostKeyRejected, "host key of \(name) (\(type)) is revoked in \(file)"), code: GIT_ECERTIFICATE)
        }
    }

    private func progress(_ stats: git_indexer_progress?) -> Int32 {
        if cancellation.isCancelled { return GIT_EUSER.rawValue }
        guard let stats, let log, ContinuousClock.now - lastReport > .seconds(5), stats.total_objects > 0 else { return 0 }
        lastReport = .now
        let percent = Int(stats.received_objects) * 100 / Int(stats.total_objects)
        log.line("receiving objects: \(percent)% (\(stats.received_objects)/\(stats.total_objects)), "
                 + "\(stats.received_bytes / 1024) KiB")
        return 0
    }
}
