import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PushDeploy

/// The token-protected API: deploy, rollback, status, history, logs; with one app, also without `/apps/{app}`.
struct AppRoutes: Sendable {
    let service: DeployService
    let bodyLimit: Int
    let logger: Logger

    func register(on router: Router<PushDeployContext>) {
        router.get("/apps") { request, _ in
            do {
                try BearerToken.check(request, against: service.config.token)
                return JSONResponse.make(.ok, service.config.apps.map(\.name))
            } catch {
                return ErrorMapping.response(for: error)
            }
        }
        for prefix in ["/apps/:app", ""] {
            router.post("\(prefix)/deploy") { request, context in
                await guarded(request, context) { app in try await deploy(app, request) }
            }
            router.post("\(prefix)/rollback") { request, context in
                await guarded(request, context) { app in try await rollback(app, request) }
            }
            router.get("\(prefix)/status") { request, context in
                await guarded(request, context) { app in JSONResponse.make(.ok, try await service.status(app: app)) }
            }
            router.get("\(prefix)/deployments") { request, context in
                await guarded(request, context) { app in
                    let limit = request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 50
                    return JSONResponse.make(.ok, try await service.history.list(app: app, limit: min(max(limit, 1), 200)))
                }
            }
            router.get("\(prefix)/deployments/:id") { request, context in
                await guarded(request, context) { app in
                    JSONResponse.make(.ok, try await deployment(app, context))
                }
            }
            router.get("\(prefix)/deployments/:id/log") { request, context in
                await guarded(request, context) { app in
                    let deployment = try await deployment(app, context)
                    if request.headers[.accept]?.contains("text/event-stream") == true {
                        return LogStreaming.events(history: service.history, deployment: deployment,
                                                   lastEventID: request.headers[HTTPField.Name("Last-Event-ID")!])
                    }
                    let follow = ["1", "true", "yes"].contains(request.uri.queryParameters.get("follow") ?? "")
                    return await LogStreaming.response(history: service.history, deployment: deployment, follow: follow)
                }
            }
        }
    }

    /// Checks the bearer token and finds the app, then runs `handler`; every error becomes a JSON answer.
    private func guarded(_ request: Request, _ context: PushDeployContext,
                         _ handler: (String) async throws -> Response) async -> Response {
        do {
            try BearerToken.check(request, against: service.config.token)
            let app = try appName(context)
            return try await handler(app)
        } catch {
            let response = ErrorMapping.response(for: error)
            if response.status.code >= 500 { logger.error("\(request.method) \(request.uri.path) failed: \(error)") }
            return response
        }
    }

    private func appName(_ context: PushDeployContext) throws -> String {
        if let name = context.parameters.get("app") {
            guard service.config.app(named: name) != nil else { throw DeployError.unknownApp(name) }
            return name
        }
        guard service.config.apps.count == 1 else {
            throw RequestError(.notFound, "several apps are configured: use /apps/{app}/… (apps: \(service.config.apps.map(\.name).joined(separator: ", ")))")
        }
        return service.config.apps[0].name
    }

    private func deployment(_ app: String, _ context: PushDeployContext) async throws -> Deployment {
        guard let text = context.parameters.get("id"), let id = Int(text), id > 0 else {
            throw RequestError(.badRequest, "a deployment id is a positive number")
        }
        guard let deployment = try await service.history.deployment(app: app, id: id) else {
            throw HistoryError.notFound(app: app, id: id)
        }
        return deployment
    }

    private func deploy(_ app: String, _ request: Request) async throws -> Response {
        let body = try ManualRequest.decode(try await BodyReader.collect(request, limit: bodyLimit))
        if let commit = body.commit, !ManualRequest.isCommit(commit) {
            throw RequestError(.badRequest, "commit must be 4 to 40 hexadecimal characters")
        }
        if let ref = body.ref, !ManualRequest.isRef(ref) {
            throw RequestError(.badRequest, "ref must be a branch name such as main or refs/heads/main")
        }
        let ref = body.ref.map { $0.hasPrefix("refs/heads/") ? $0 : "refs/heads/\($0)" }
        let trigger = Trigger(source: .manual, deliveryId: request.headers[HTTPField.Name("Idempotency-Key")!],
                              ref: ref, commit: body.commit?.lowercased(), pusher: body.by, message: body.message)
        let (deployment, isNew) = try await service.deploy(app: app, trigger: trigger)
        logger.info("manual deploy of \(app): deployment \(deployment.id)\(isNew ? "" : " (repeated request)")")
        return JSONResponse.accepted(isNew ? .accepted : .ok, AcceptedBody(
            deployment: deployment.id, app: app, statusUrl: "/apps/\(app)/deployments/\(deployment.id)",
            duplicate: isNew ? nil : true))
    }

    private func rollback(_ app: String, _ request: Request) async throws -> Response {
        let body = try ManualRequest.decode(try await BodyReader.collect(request, limit: bodyLimit))
        if let target = body.to, target.isEmpty || target.count > 200 || target.contains("/") {
            throw RequestError(.badRequest, "to must be a deployment id or a release version")
        }
        let trigger = Trigger(source: .manual, pusher: body.by, message: body.message)
        let deployment = try await service.rollback(app: app, to: body.to, trigger: trigger)
        logger.info("rollback of \(app) queued: deployment \(deployment.id)")
        return JSONResponse.accepted(.accepted, AcceptedBody(
            deployment: deployment.id, app: app, statusUrl: "/apps/\(app)/deployments/\(deployment.id)"))
    }
}

/// The optional JSON body of `/deploy` and `/rollback`.
struct ManualRequest: Decodable {
    var ref: String?
    var commit: String?
    var to: String?
    var by: String?
    var message: String?

    static func decode(_ body: [UInt8]) throws -> ManualRequest {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return ManualRequest() }
        do {
            let decoded = try JSONDecoder().decode(ManualRequest.self, from: Data(body))
            return ManualRequest(ref: decoded.ref, commit: decoded.commit, to: decoded.to,
                                 by: decoded.by?.capped(toUTF8: Trigger.nameLimit), message: decoded.message?.capped(toUTF8: Trigger.messageLimit))
        } catch {
            throw RequestError(.badRequest, "body must be JSON like {\"ref\": \"main\"} or {\"commit\": \"abc1234\"}")
        }
    }

    static func isCommit(_ text: String) -> Bool {
        (4...40).contains(text.count) && text.allSatisfy(\.isHexDigit)
    }

    static func isRef(_ text: String) -> Bool {
        let name = text.hasPrefix("refs/heads/") ? String(text.dropFirst(11)) : text
        return !name.isEmpty && name.count <= 200 && !name.contains("..") && !name.hasPrefix("-") && !name.hasPrefix("/")
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._/-".contains($0)) }
    }
}
