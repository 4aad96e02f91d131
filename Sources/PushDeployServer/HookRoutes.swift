import HTTPTypes
import Hummingbird
import Logging
import PushDeploy

/// `POST /hooks/github`, `/hooks/gitlab`, `/hooks/travis`: verify, decide, queue.
struct HookRoutes: Sendable {
    let service: DeployService
    let bodyLimit: Int
    let logger: Logger
    let intake: WebhookIntake

    init(service: DeployService, bodyLimit: Int, logger: Logger) {
        self.service = service
        self.bodyLimit = bodyLimit
        self.logger = logger
        intake = WebhookIntake(apps: service.config.apps)
    }

    func register(on router: Router<PushDeployContext>) {
        for sender in WebhookSender.allCases {
            router.post("/hooks/\(sender.rawValue)") { request, _ in
                await receive(sender, request)
            }
        }
    }

    private func receive(_ sender: WebhookSender, _ request: Request) async -> Response {
        let response = await answer(sender, request)
        service.metrics.webhook(sender: sender.rawValue, status: Int(response.status.code))
        return response
    }

    private func answer(_ sender: WebhookSender, _ request: Request) async -> Response {
        do {
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            // Nothing unsigned is read: the intake checks the signature headers before the body is even collected.
            try intake.checkSignatureHeaders(sender, WebhookRequest(headers: headers, body: []))
            let body = try await BodyReader.collect(request, limit: bodyLimit)
            let decision = try intake.receive(sender, WebhookRequest(headers: headers, body: body))
            switch decision {
            case let .ignored(reason):
                logger.info("webhook \(sender.rawValue) ignored: \(reason)")
                return JSONResponse.make(.ok, IgnoredBody(ignored: reason))
            case let .deploy(apps, event):
                var accepted: [(Deployment, Bool)] = []
                for app in apps {
                    accepted.append(try await service.deploy(app: app, trigger: event.trigger))
                }
                let (first, isNew) = accepted[0]
                logger.info("webhook \(sender.rawValue): \(isNew ? "queued" : "repeated delivery of") deployment \(first.app)/\(first.id) of \(event.commit.prefix(12))")
                return JSONResponse.accepted(isNew ? .accepted : .ok, AcceptedBody(
                    deployment: first.id, app: first.app, statusUrl: "/apps/\(first.app)/deployments/\(first.id)",
                    duplicate: isNew ? nil : true, deployments: accepted.count > 1 ? accepted.map(\.0.id) : nil))
            }
        } catch {
            let response = ErrorMapping.response(for: error)
            if response.status.code >= 500 {
                logger.error("webhook \(sender.rawValue) failed: \(error)")
            } else {
                logger.notice("webhook \(sender.rawValue) refused (\(response.status.code)): \(error)")
            }
            return response
        }
    }
}
