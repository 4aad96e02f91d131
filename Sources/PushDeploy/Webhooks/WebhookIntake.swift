/// The senders pushdeploy accepts webhooks from, by route.
public enum WebhookSender: String, Sendable, CaseIterable {
    /// `/hooks/github`: GitHub and Gitea.
    case github
    /// `/hooks/gitlab`.
    case gitlab
    /// `/hooks/travis`.
    case travis
}

/// What a verified webhook leads to.
public enum WebhookDecision: Sendable, Equatable {
    /// Deploy `event` to each of `apps` (usually one).
    case deploy(apps: [String], event: PushEvent)
    case ignored(String)
}

/// Verifies a webhook against the apps' secrets, reads it, and finds the apps it deploys.
///
/// The signature is checked before the body is parsed: nothing unauthenticated is read further than its headers.
public struct WebhookIntake: Sendable {
    public let apps: [AppConfig]
    /// Per sender, the apps grouped by their secret: apps often share one, and each distinct secret is checked once.
    private let groups: [WebhookSender: [SecretGroup]]

    private struct SecretGroup: Sendable {
        let check: Check
        /// Indexes into `apps`, ascending.
        var members: [Int]
    }

    private enum Check: Sendable, Equatable {
        case hmac(Secret)
        case token(Secret)
        case travis(publicKeyPEM: String)

        func passes(_ request: WebhookRequest) -> Bool {
            switch self {
            case let .hmac(secret): GitHubWebhook.isSigned(request, with: secret)
            case let .token(token): GitLabWebhook.isSigned(request, with: token)
            case let .travis(pem): TravisWebhook.isSigned(request, withPublicKey: pem)
            }
        }
    }

    public init(apps: [AppConfig]) {
        self.apps = apps
        var groups: [WebhookSender: [SecretGroup]] = [:]
        for sender in WebhookSender.allCases {
            var senderGroups: [SecretGroup] = []
            for (index, app) in apps.enumerated() {
                let check: Check? = switch sender {
                case .github: app.webhooks.github.map(Check.hmac)
                case .gitlab: app.webhooks.gitlab.map(Check.token)
                case .travis: app.webhooks.travisPublicKeyPEM.map { Check.travis(publicKeyPEM: $0) }
                }
                guard let check else { continue }
                if let existing = senderGroups.firstIndex(where: { $0.check == check }) {
                    senderGroups[existing].members.append(index)
                } else {
                    senderGroups.append(SecretGroup(check: check, members: [index]))
                }
            }
            groups[sender] = senderGroups
        }
        self.groups = groups
    }

    /// The headers of which a request from `sender` must carry one to be read at all (matched without regard to case).
    public static func signatureHeaders(_ sender: WebhookSender) -> [String] {
        switch sender {
        case .github: ["X-Hub-Signature-256", "X-Gitea-Signature"]
        case .gitlab: ["X-Gitlab-Token"]
        case .travis: ["Signature"]
        }
    }

    /// Decides what a request to `/hooks/<sender>` asks for.
    public func receive(_ sender: WebhookSender, _ request: WebhookRequest) throws(WebhookError) -> WebhookDecision {
        let signedFor = try verify(sender, request)
        let outcome: WebhookOutcome = switch sender {
        case .github: try GitHubWebhook.parse(request)
        case .gitlab: try GitLabWebhook.parse(request)
        case .travis: try TravisWebhook.parse(request)
        }
        guard case let .push(event) = outcome else {
            if case let .ignored(reason) = outcome { return .ignored(reason) }
            return .ignored("not a push")
        }
        let sameRepository = signedFor.filter {
            RepositoryMatcher.matches(configURL: $0.repository.url, name: event.repositoryName, urls: event.repositoryURLs)
        }
        guard !sameRepository.isEmpty else {
            return .ignored("no app deploys repository \(event.repositoryName ?? event.repositoryURLs.first ?? "unknown")")
        }
        let deploying = sameRepository.filter { $0.repository.branch == event.branch }
        guard !deploying.isEmpty else {
            let followed = sameRepository.map { "\($0.name) deploys \($0.repository.branch)" }.joined(separator: ", ")
            return .ignored("branch \(event.branch ?? event.ref) is not deployed (\(followed))")
        }
        return .deploy(apps: deploying.map(\.name), event: event)
    }

    /// Refuses a request that carries none of the sender's signature headers, or a malformed GitHub one; reads no body.
    public func checkSignatureHeaders(_ sender: WebhookSender, _ request: WebhookRequest) throws(WebhookError) {
        let expected = Self.signatureHeaders(sender)
        guard expected.contains(where: { request.header($0) != nil }) else {
            throw .unauthorized("missing \(expected.joined(separator: " or ")) header")
        }
        if sender == .github, GitHubWebhook.signature(request) == nil {
            throw .unauthorized("X-Hub-Signature-256 is not of the form sha256=<hex>")
        }
    }

    /// The apps whose secret signed the request, in the config's order; throws when none did.
    private func verify(_ sender: WebhookSender, _ request: WebhookRequest) throws(WebhookError) -> [AppConfig] {
        let candidates = groups[sender] ?? []
        guard !candidates.isEmpty else {
            throw .unauthorized("no app accepts \(sender.rawValue) webhooks (configure webhooks.\(sender.rawValue))")
        }
        try checkSignatureHeaders(sender, request)
        let signed = candidates.filter { $0.check.passes(request) }.flatMap(\.members).sorted().map { apps[$0] }
        guard !signed.isEmpty else {
            throw .unauthorized(sender == .gitlab ? "X-Gitlab-Token does not match" : "signature does not match")
        }
        return signed
    }
}
