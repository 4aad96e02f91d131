import Crypto
import Foundation

/// GitHub and Gitea push webhooks: `X-Hub-Signature-256` (or `X-Gitea-Signature`) over the raw body.
public enum GitHubWebhook {
    /// True when the request is signed with `secret`. Compared in constant time.
    public static func isSigned(_ request: WebhookRequest, with secret: Secret) -> Bool {
        guard let expected = signature(request) else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: request.body, using: SymmetricKey(data: secret.bytes))
        return ConstantTime.equals(Array(mac), expected)
    }

    /// The signature bytes the sender claims, or nil when there is none (or it is not hex).
    static func signature(_ request: WebhookRequest) -> [UInt8]? {
        if let header = request.header("x-hub-signature-256") {
            let trimmed = trimmingBlanks(header.utf8)
            let prefix = "sha256=".utf8
            guard trimmed.count > prefix.count,
                  zip(trimmed.prefix(prefix.count), prefix).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
            return Hex.decode(trimmed.dropFirst(prefix.count))
        }
        if let header = request.header("x-gitea-signature") {
            return Hex.decode(trimmingBlanks(header.utf8))
        }
        return nil
    }

    /// A header value without the spaces and tabs around it.
    private static func trimmingBlanks(_ bytes: String.UTF8View) -> Substring.UTF8View {
        let isBlank = { (byte: UInt8) in byte == 0x20 || byte == 0x09 }
        guard let first = bytes.firstIndex(where: { !isBlank($0) }), let last = bytes.lastIndex(where: { !isBlank($0) }) else {
            return Substring("").utf8
        }
        return bytes[first ... last]
    }

    /// Reads a request whose signature has been checked.
    public static func parse(_ request: WebhookRequest) throws(WebhookError) -> WebhookOutcome {
        let isGitea = request.header("x-gitea-event") != nil
        let event = (request.header("x-gitea-event") ?? request.header("x-github-event") ?? "").lowercased()
        let source: TriggerSource = isGitea ? .gitea : .github
        switch event {
        case "ping":
            return .ignored("ping")
        case "push":
            break
        case "":
            throw .malformed("missing X-GitHub-Event header")
        default:
            return .ignored("event '\(event)' is not a push")
        }
        let json: [UInt8]
        if request.isForm {
            guard let payload = FormBody.value("payload", in: request.body) else {
                throw .malformed("form body has no payload field")
            }
            json = Array(payload.utf8)
        } else {
            json = request.body
        }
        let push: Payload
        do {
            push = try JSONDecoder().decode(Payload.self, from: Data(json))
        } catch {
            throw .malformed("push payload is not valid JSON of a push: \(JSONErrorText.describe(error))")
        }
        guard let ref = push.ref, !ref.isEmpty else { throw .malformed("push payload has no ref") }
        if ref.hasPrefix("refs/tags/") { return .ignored("tag \(ref.dropFirst(10)) is not a branch") }
        guard ref.hasPrefix("refs/heads/") else { return .ignored("ref \(ref) is not a branch") }
        guard let after = push.after else { throw .malformed("push payload has no 'after' commit") }
        if push.deleted == true || CommitID.isZero(after) {
            return .ignored("branch \(ref.dropFirst(11)) was deleted")
        }
        guard CommitID.isFull(after) else { throw .malformed("'after' is not a commit id") }
        let repository = push.repository
        let urls = [repository?.cloneUrl, repository?.sshUrl, repository?.htmlUrl, repository?.gitUrl].compactMap { $0 }
        let delivery = request.header("x-gitea-delivery") ?? request.header("x-github-delivery")
        let pusher = push.pusher?.name ?? push.pusher?.login ?? push.sender?.login
        let message = push.headCommit?.message ?? push.commits?.last?.message
        return .push(PushEvent(source: source, repositoryName: repository?.fullName, repositoryURLs: urls, ref: ref,
                               commit: after.lowercased(), deliveryId: delivery, pusher: pusher, message: message))
    }

    /// The fields of a GitHub or Gitea push that pushdeploy reads; the rest of the payload is only checked to be JSON.
    private struct Payload: Decodable {
        var ref: String?
        var after: String?
        var deleted: Bool?
        var repository: Repository?
        var pusher: Person?
        var sender: Person?
        var headCommit: Commit?
        var commits: [Commit]?

        enum CodingKeys: String, CodingKey {
            case ref, after, deleted, repository, pusher, sender, commits
            case headCommit = "head_commit"
        }
    }

    private struct Repository: Decodable {
        var fullName: String?
        var cloneUrl: String?
        var sshUrl: String?
        var htmlUrl: String?
        var gitUrl: String?

        enum CodingKeys: String, CodingKey {
            case fullName = "full_name", cloneUrl = "clone_url", sshUrl = "ssh_url", htmlUrl = "html_url", gitUrl = "git_url"
        }
    }

    private struct Person: Decodable {
        var name: String?
        var login: String?
    }

    private struct Commit: Decodable {
        var message: String?
    }
}

/// Lowercase hex, both ways.
enum Hex {
    static func decode(_ text: Substring.UTF8View) -> [UInt8]? {
        let bytes = Array(text)
        guard bytes.count % 2 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count / 2)
        var index = 0
        while index < bytes.count {
            guard let high = nibble(bytes[index]), let low = nibble(bytes[index + 1]) else { return nil }
            output.append(high << 4 | low)
            index += 2
        }
        return output
    }

    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        for byte in bytes {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: byte - 48
        case 97...102: byte - 87
        case 65...70: byte - 55
        default: nil
        }
    }
}

/// Short, readable JSON decoding errors (never echoing the payload).
enum JSONErrorText {
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "unreadable" }
        switch error {
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .keyNotFound(_, context),
             let .dataCorrupted(context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not JSON" : "unexpected value at \(path)"
        @unknown default:
            return "unreadable"
        }
    }
}
