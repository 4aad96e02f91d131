import _CryptoExtras
import Crypto
import Foundation

/// Travis CI build notifications: form field `payload`, header `Signature` = base64 RSA-SHA1 over the raw `payload` value.
public enum TravisWebhook {
    /// True when the request's `Signature` verifies against `publicKeyPEM` over the exact form value of `payload`.
    public static func isSigned(_ request: WebhookRequest, withPublicKey publicKeyPEM: String) -> Bool {
        guard let header = request.header("signature"),
              let signature = Data(base64Encoded: header.trimmingCharacters(in: .whitespacesAndNewlines)),
              let payload = FormBody.value("payload", in: request.body),
              let key = try? _RSA.Signing.PublicKey(unsafePEMRepresentation: publicKeyPEM) else { return false }
        let digest = Insecure.SHA1.hash(data: Array(payload.utf8))
        return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: digest,
                                    padding: .insecurePKCS1v1_5)
    }

    /// Reads a request whose signature has been checked: only a passed (or fixed) push build deploys.
    public static func parse(_ request: WebhookRequest) throws(WebhookError) -> WebhookOutcome {
        guard request.isForm, let payload = FormBody.value("payload", in: request.body) else {
            throw .malformed("Travis sends a form body with a payload field")
        }
        let build: Payload
        do {
            build = try JSONDecoder().decode(Payload.self, from: Data(payload.utf8))
        } catch {
            throw .malformed("payload is not valid JSON of a Travis build: \(JSONErrorText.describe(error))")
        }
        let number = build.number.map { "#\($0)" } ?? "build"
        guard build.type == "push" else {
            return .ignored("Travis \(number) is a \(build.type ?? "unknown") build, not a push build")
        }
        if build.pullRequest == true { return .ignored("Travis \(number) is a pull request build") }
        if let tag = build.tag, !tag.isEmpty { return .ignored("Travis \(number) built tag \(tag)") }
        let passed = build.status == 0 && (build.state == nil || ["passed", "fixed"].contains(build.state?.lowercased() ?? ""))
        guard passed else {
            let state = build.statusMessage ?? build.state ?? "not finished"
            return .ignored("Travis \(number) has not passed (\(state.lowercased()))")
        }
        guard let branch = build.branch, !branch.isEmpty else { throw .malformed("Travis build has no branch") }
        guard let commit = build.commit, CommitID.isFull(commit) else { throw .malformed("Travis build has no commit id") }
        // The repository comes from the signed payload only. Travis signs every customer's notifications with one
        // key, so the unsigned Travis-Repo-Slug header could name any repository: it is never read.
        let owner = build.repository?.ownerName
        let name = build.repository?.name
        let slug = owner != nil && name != nil ? "\(owner!)/\(name!)" : ""
        return .push(PushEvent(source: .travis, repositoryName: slug.isEmpty ? nil : slug,
                               repositoryURLs: [build.repository?.url].compactMap { $0 }, ref: "refs/heads/\(branch)",
                               commit: commit.lowercased(), deliveryId: build.id.map { "build-\($0)" },
                               pusher: build.committerName ?? build.authorName, message: build.message))
    }

    private struct Payload: Decodable {
        var id: Int?
        var number: String?
        var type: String?
        var state: String?
        var status: Int?
        var statusMessage: String?
        var branch: String?
        var commit: String?
        var message: String?
        var pullRequest: Bool?
        var tag: String?
        var authorName: String?
        var committerName: String?
        var repository: Repository?

        enum CodingKeys: String, CodingKey {
            case id, number, type, state, status, branch, commit, message, tag, repository
            case statusMessage = "status_message", pullRequest = "pull_request"
            case authorName = "author_name", committerName = "committer_name"
        }
    }

    private struct Repository: Decodable {
        var name: String?
        var ownerName: String?
        var url: String?

        enum CodingKeys: String, CodingKey {
            case name, url, ownerName = "owner_name"
        }
    }
}
