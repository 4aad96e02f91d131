import Logging
import PushDeploy
import ServiceLifecycle

/// Drains the queues on shutdown: running deployments are cancelled and recorded `interrupted`.
///
/// The history is opened before the server starts (see ``buildApplication(service:logger:port:)``), never here,
/// so no request can create a deployment before the existing ones are known.
struct DeployServiceLifecycle: Service {
    let service: DeployService
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: cancelling running deployments")
        await service.shutdown()
    }
}
