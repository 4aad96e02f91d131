import Foundation

/// Where an app's commit status goes: the git host's status API for the deployed commit.
public struct CommitStatusConfig: Sendable {
    public enum Provider: String, Sendable, CaseIterable {
        case github, gitea, gitlab
    }

    public var provider: Provider
    /// `https://api.github.com`, `https://gitea.example.com/api/v1`, `https://gitlab.com/api/v4`.
    public var apiURL: String
    /// `owner/name` (GitHub, Gitea) or the GitLab project id or path.
    public var repository: String
    public var token: Secret

    public init(provider: Provider, apiURL: String, repository: String, token: Secret) {
        self.provider = provider
        self.apiURL = apiURL
        self.repository = repository
        self.token = token
    }
}

/// What a notification target is told about.
public enum NotifyEvent: String, Sendable, CaseIterable, Codable {
    case started, succeeded, failed
    case rolledBack = "rolled_back"
    case autoRollback = "auto_rollback"
    case instanceRestarted = "instance_restarted"
}

/// One notification target: a Slack-compatible incoming webhook or a plain JSON webhook.
public struct NotifyTarget: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case slack, json
    }

    public var kind: Kind
    /// The URL, from a file or the environment when it holds a secret (a Slack webhook URL does).
    public var url: Secret
    public var events: Set<NotifyEvent>

    public init(kind: Kind, url: Secret, events: Set<NotifyEvent>) {
        self.kind = kind
        self.url = url
        self.events = events
    }
}
