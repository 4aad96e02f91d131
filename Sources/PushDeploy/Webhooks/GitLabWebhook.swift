import Foundation

/// GitLab push webhooks: the `X-Gitlab-Token` header holds the secret token verbatim.
public enum GitLabWebhook {
    /// True when the request carries `token`. Compared in constant time.
    public static func isSigned(_ request: WebhookRequest, with token: Secret) -> Bool {
        guard let header = request.header("x-gitlab-token") else { return false }
        return token.constantTimeEquals(Array(header.utf8))
    }

    /// Reads a request whose token has been checked.
    public static func parse(_ request: WebhookRequest) throws(WebhookError) -> WebhookOutcome {
        let event = request.header("x-gitlab-event") ?? ""
        let push: Payload
        do {
            push = try JSONDecoder().decode(Payload.self, from: Data(request.body))
        } catch {
            throw .malformed("push payload is not valid JSON of a push: \(JSONErrorText.describe(error))")
        }
        switch event {
        case "Push Hook", "Push Event":
            break
        case "System Hook" where push.objectKind == "push" || push.eventName == "push":
            break
        case "Tag Push Hook":
            return .ignored("tag push is not a branch")
        case "":
            throw .malformed("missing X-Gitlab-Event header")
        default:
            return .ignored("event '\(event)' is not a push")
        }
        if push.objectKind == "tag_push" { return .ignored("tag push is not a branch") }
        guard let ref = push.ref, !ref.isEmpty else { throw .malformed("push payload has no ref") }
        if ref.hasPrefix("refs/tags/") { return .ignored("tag \(ref.dropFirst(10)) is not a branch") }
        guard ref.hasPrefix("refs/heads/") else { return .ignored("ref \(ref) is not a branch") }
        guard let after = push.after ?? push.checkoutSha else { throw .malformed("push payload has no 'after' commit") }
        if CommitID.isZero(after) { return .ignored("branch \(ref.dropFirst(11)) was deleted") }
        guard CommitID.isFull(after) else { throw .malformed("'after' is not a commit id") }
        let project = push.project
        let urls = [project?.gitHttpUrl, project?.gitSshUrl, project?.webUrl, push.repository?.gitHttpUrl,
                    push.repository?.gitSshUrl, push.repository?.homepage].compactMap { $0 }
        let message = push.commits?.first(where: { $0.id == after })?.message ?? push.commits?.last?.message
        return .push(PushEvent(source: .gitlab, repositoryName: project?.pathWithNamespace, repositoryURLs: urls, ref: ref,
                               commit: after.lowercased(), deliveryId: request.header("x-gitlab-event-uuid"),
                               pusher: push.userUsername ?? push.userName, message: message))
    }

    private struct Payload: Decodable {
        var objectKind: String?
        var eventName: String?
        var ref: String?
        var after: String?
        var checkoutSha: String?
        var userName: String?
        var userUsername: String?
        var project: Project?
        var repository: Repository?
        var commits: [Commit]?

        enum CodingKeys: String, CodingKey {
            case ref, after, project, repository, commits
            case objectKind = "object_kind", eventName = "event_name", checkoutSha = "checkout_sha"
            case userName = "user_name", userUsername = "user_username"
        }
    }

    private struct Project: Decodable {
        var pathWithNamespace: String?
        var gitHttpUrl: String?
        var gitSshUrl: String?
        var webUrl: String?

        enum CodingKeys: String, CodingKey {
            case pathWithNamespace = "path_with_namespace", gitHttpUrl = "git_http_url", gitSshUrl = "git_ssh_url"
            case webUrl = "web_url"
        }
    }

    private struct Repository: Decodable {
        var gitHttpUrl: String?
        var gitSshUrl: String?
        var homepage: String?

        enum CodingKeys: String, CodingKey {
            case homepage, gitHttpUrl = "git_http_url", gitSshUrl = "git_ssh_url"
        }
    }

    private struct Commit: Decodable {
        var id: String?
        var message: String?
    }
}
