import _CryptoExtras
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import PushDeploy
@testable import PushDeployServer

/// A runner that keeps every deployment running until it is cancelled, so answers can be checked in peace.
struct ParkedRunner: DeploymentRunner {
    func run(_ deployment: Deployment, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        try await progress.enter(.fetching)
        try await Task.sleep(for: .seconds(3600))
        return .live
    }
}

/// A private state folder, an app config and a service for one router test.
final class RouterFixture: Sendable {
    let directory: String
    let service: DeployService
    let travisKey: _RSA.Signing.PrivateKey
    static let githubSecret = "It's a Secret to Everybody"
    static let gitlabToken = "gitlab-token-123"
    static let apiToken = "api-token-xyz"
    /// RSA key generation takes a good part of a second of CPU: one key serves every test.
    static let sharedTravisKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    init(apps: [AppConfig]? = nil, bodyLimit: Int = 5 * 1024 * 1024, history: (any DeploymentHistory)? = nil) async throws {
        directory = NSTemporaryDirectory() + "pushdeploy-router-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        travisKey = Self.sharedTravisKey
        let apps = apps ?? [Self.app("shop", url: "https://github.com/acme/shop.git", branch: "main", travisPEM: travisKey.publicKey.pemRepresentation)]
        let config = Config(listen: ListenAddress(host: "127.0.0.1", port: 0), stateDirectory: directory,
                            token: Secret(Self.apiToken), bodyLimit: bodyLimit, apps: apps)
        let history = history ?? FileDeploymentHistory(stateDirectory: directory)
        service = DeployService(config: config, history: history, runner: ParkedRunner(),
                                rollbackTargets: HistoryRollbackTargets(history: history, releases: FileReleaseStore(stateDirectory: directory)))
        try await service.open()
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Stores a release of `shop` with a dummy jar, so that a rollback may name its version.
    func storeRelease(_ version: String) throws {
        let releases = FileReleaseStore(stateDirectory: directory)
        let jar = directory + "/dummy.jar"
        try Data("not a jar".utf8).write(to: URL(fileURLWithPath: jar))
        _ = try releases.reserve(app: "shop", version: version)
        try releases.store(Release(app: "shop", version: version, commit: Payloads.commit, builtAt: Date(), buildSeconds: 1, sha256: "x"),
                           jarAt: jar)
    }

    static func app(_ name: String, url: String, branch: String, ports: (Int, Int) = (18081, 18082), travisPEM: String? = nil) -> AppConfig {
        AppConfig(name: name, repository: RepositoryConfig(url: url, branch: branch),
                  webhooks: WebhookSecrets(github: Secret(githubSecret), gitlab: Secret(gitlabToken), travisPublicKeyPEM: travisPEM),
                  build: BuildConfig(), run: RunConfig(), strategy: .blueGreen(blue: ports.0, green: ports.1), health: HealthConfig(),
                  watch: .seconds(30), keepPreviousWarm: true, nginx: NginxConfig(includeFile: "/tmp/unused.inc"), keepReleases: 5,
                  hooks: LifecycleHooks())
    }

    /// Runs `body` against the router in-process, then stops every deployment the test queued.
    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: buildRouter(service: service))
        do {
            try await app.test(.router, body)
        } catch {
            await service.shutdown()
            throw error
        }
        await service.shutdown()
    }

    static func sign(_ body: [UInt8], secret: String = githubSecret) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    func travisSignature(_ payload: String) throws -> String {
        let signature = try travisKey.signature(for: Insecure.SHA1.hash(data: Array(payload.utf8)), padding: .insecurePKCS1v1_5)
        return signature.rawRepresentation.base64EncodedString()
    }
}

/// The project's own payloads, shaped like the senders' (compact, as they are sent).
enum Payloads {
    static let commit = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"

    static func githubPush(ref: String = "refs/heads/main", after: String = commit, repository: String = "acme/shop",
                           deleted: Bool = false, message: String = "Fix checkout; rm -rf / $(reboot)") -> [UInt8] {
        let object: [String: Any] = [
            "ref": ref, "before": "9049f1265b7d61be4a8904a9a27120d2064dab3b", "after": after, "deleted": deleted,
            "created": false, "forced": false,
            "repository": ["full_name": repository, "clone_url": "https://github.com/\(repository).git",
                           "ssh_url": "git@github.com:\(repository).git", "html_url": "https://github.com/\(repository)"],
            "pusher": ["name": "octocat", "email": "octocat@example.com"],
            "head_commit": ["id": after, "message": message],
            "commits": [["id": after, "message": message]],
        ]
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    static func gitlabPush(ref: String = "refs/heads/main", after: String = commit, project: String = "acme/shop") -> [UInt8] {
        let object: [String: Any] = [
            "object_kind": "push", "event_name": "push", "ref": ref, "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
            "after": after, "checkout_sha": after, "user_username": "jsmith",
            "project": ["path_with_namespace": project, "git_http_url": "https://gitlab.com/\(project).git"],
            "commits": [["id": after, "message": "Update README"]], "total_commits_count": 1,
        ]
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    static func travisBuild(state: String = "passed", status: Int? = 0, type: String = "push", branch: String = "main",
                            repository: (String, String) = ("acme", "shop")) -> String {
        var object: [String: Any] = [
            "id": 1_234_567, "number": "42", "type": type, "state": state, "status_message": state.capitalized,
            "branch": branch, "commit": commit, "message": "Green build", "pull_request": false,
            "repository": ["owner_name": repository.0, "name": repository.1],
        ]
        object["status"] = status ?? NSNull()
        object["result"] = status ?? NSNull()
        return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func form(_ fields: [String: String]) -> [UInt8] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._*")
        return Array(fields.sorted { $0.key < $1.key }.map { key, value in
            "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed)!)"
        }.joined(separator: "&").utf8)
    }
}

extension TestClientProtocol {
    /// POSTs `body` with `headers`, returning status and parsed JSON.
    func post(_ uri: String, _ body: [UInt8], _ headers: [String: String]) async throws -> (HTTPResponse.Status, [String: Any]) {
        var fields = HTTPFields()
        for (name, value) in headers { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return try await execute(uri: uri, method: .post, headers: fields, body: ByteBuffer(bytes: body)) { response in
            let json = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
            return (response.status, json)
        }
    }

    func get(_ uri: String, token: String? = RouterFixture.apiToken) async throws -> (HTTPResponse.Status, Data) {
        var fields = HTTPFields()
        if let token { fields[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .get, headers: fields) { response in
            (response.status, Data(response.body.readableBytesView))
        }
    }
}

/// GitHub's delivery headers for a signed JSON push.
func githubHeaders(_ body: [UInt8], event: String = "push", delivery: String = UUID().uuidString) -> [String: String] {
    ["Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
     "X-Hub-Signature-256": RouterFixture.sign(body), "User-Agent": "GitHub-Hookshot/044aadd"]
}
