import Foundation

/// A verified push that may deploy: which repository, which branch, which commit.
public struct PushEvent: Sendable, Equatable {
    public var source: TriggerSource
    /// `owner/name` (GitLab: the full namespace path).
    public var repositoryName: String?
    /// Every URL the sender gave for the repository (clone, ssh, web).
    public var repositoryURLs: [String]
    /// The full ref, such as `refs/heads/main`.
    public var ref: String
    /// The 40-character commit id the branch now points at.
    public var commit: String
    public var deliveryId: String?
    public var pusher: String?
    public var message: String?

    public init(source: TriggerSource, repositoryName: String?, repositoryURLs: [String], ref: String, commit: String,
                deliveryId: String? = nil, pusher: String? = nil, message: String? = nil) {
        self.source = source
        self.repositoryName = repositoryName
        self.repositoryURLs = repositoryURLs
        self.ref = ref
        self.commit = commit
        self.deliveryId = deliveryId
        self.pusher = pusher
        self.message = message
    }

    /// The branch name when the ref is a branch.
    public var branch: String? {
        ref.hasPrefix("refs/heads/") ? String(ref.dropFirst("refs/heads/".count)) : nil
    }

    /// The trigger recorded in the deployment's history: what the sender wrote, bounded (the history keeps it).
    public var trigger: Trigger {
        Trigger(source: source, deliveryId: deliveryId?.capped(toUTF8: Trigger.nameLimit), ref: ref.capped(toUTF8: Trigger.nameLimit),
                commit: commit, repository: repositoryName?.capped(toUTF8: Trigger.nameLimit),
                pusher: pusher?.capped(toUTF8: Trigger.nameLimit), message: message?.capped(toUTF8: Trigger.messageLimit))
    }
}

extension Trigger {
    /// The most a delivery id, ref, repository or pusher keeps, in UTF-8 bytes.
    public static let nameLimit = 256
    /// The most a commit message keeps, in UTF-8 bytes.
    public static let messageLimit = 1024
}

extension String {
    /// The longest prefix of whole characters that fits in `limit` UTF-8 bytes.
    public func capped(toUTF8 limit: Int) -> String {
        guard utf8.count > limit else { return self }
        var result = ""
        var bytes = 0
        for character in self {
            bytes += character.utf8.count
            guard bytes <= limit else { break }
            result.append(character)
        }
        return result
    }
}

/// What a verified webhook asks for.
public enum WebhookOutcome: Sendable, Equatable {
    case push(PushEvent)
    /// A request that is genuine but deploys nothing (ping, tag, other branch, failed build), with the reason.
    case ignored(String)
}

/// Why a webhook request was refused.
public enum WebhookError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Missing or wrong signature or token.
    case unauthorized(String)
    /// A body that cannot be read.
    case malformed(String)

    public var description: String {
        switch self {
        case let .unauthorized(reason): reason
        case let .malformed(reason): reason
        }
    }
}

/// The parts of an HTTP request a webhook verifier reads.
public struct WebhookRequest: Sendable {
    /// Header names are matched without regard to case.
    public var headers: [String: String]
    /// The raw body, exactly as received: signatures are computed over these bytes.
    public var body: [UInt8]

    public init(headers: [String: String], body: [UInt8]) {
        var lowered: [String: String] = [:]
        for (name, value) in headers { lowered[name.lowercased()] = value }
        self.headers = lowered
        self.body = body
    }

    /// A header's value, by case-insensitive name.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// True when the body is a form (`application/x-www-form-urlencoded`).
    public var isForm: Bool {
        header("content-type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false
    }
}

/// Commit ids as senders write them.
enum CommitID {
    /// True for a full 40-character hex id.
    static func isFull(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy(isHex)
    }

    /// True for an id of 4 to 40 hex characters (a full or abbreviated one).
    static func isValid(_ text: String) -> Bool {
        (4...40).contains(text.utf8.count) && text.utf8.allSatisfy(isHex)
    }

    /// True for the all-zero id a sender uses for a deleted branch.
    static func isZero(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 == UInt8(ascii: "0") }
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (97...102).contains(byte) || (65...70).contains(byte)
    }
}
