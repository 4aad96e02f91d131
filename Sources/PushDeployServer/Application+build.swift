import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import PushDeploy

/// The request context of every route.
public typealias PushDeployContext = BasicRequestContext

/// Builds the HTTP application around a ``DeployService`` that has been opened; `serve` and the tests call the same function.
///
/// `maxConnections` overrides the config's `max_connections`.
public func buildApplication(service: DeployService, logger: Logger = Logger(label: "pushdeploy"),
                             port: Int? = nil, maxConnections: Int? = nil) -> some ApplicationProtocol {
    let router = buildRouter(service: service, logger: logger)
    let address = service.config.listen
    let budget = ConnectionBudget(limit: maxConnections ?? service.config.maxConnections)
    // A connection that sends no complete request head within 30 s is closed; header fields beyond 16 KiB are 431.
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [ConnectionGuard(budget: budget)], idleTimeout: .seconds(30),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 << 10, maxHeaderListSize: 32 << 10, maxHeaderFieldCount: 100))
    return Application(
        router: router,
        server: .http1(configuration: http1),
        configuration: .init(address: .hostname(address.host, port: port ?? address.port), serverName: "pushdeploy"),
        services: [DeployServiceLifecycle(service: service, logger: logger)],
        logger: logger
    )
}

/// Builds the router with every route of the HTTP API.
public func buildRouter(service: DeployService, logger: Logger = Logger(label: "pushdeploy")) -> Router<PushDeployContext> {
    let router = Router(context: PushDeployContext.self)
    let limit = service.config.bodyLimit
    HookRoutes(service: service, bodyLimit: limit, logger: logger).register(on: router)
    AppRoutes(service: service, bodyLimit: limit, logger: logger).register(on: router)
    router.get("/healthz") { _, _ in JSONResponse.make(.ok, ["status": "ok"]) }
    // The page is public; everything it shows comes from the API with the token the person enters.
    router.get("/") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                                        HTTPField.Name("Content-Security-Policy")!: Dashboard.contentSecurityPolicy],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: Dashboard.page)))
    }
    // Open like /healthz: keep it on loopback, or let nginx publish only /hooks/ (README, "Security").
    router.get("/metrics") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: await service.metricsText())))
    }
    return router
}
