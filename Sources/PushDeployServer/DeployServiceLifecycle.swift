import Logging
import PushDeploy
import ServiceLifecycle

/// Runs supervision of the live instances, and drains the queues on shutdown: running deployments are cancelled
/// and recorded `interrupted`.
///
/// The history is opened before the server starts (see ``buildApplication(service:logger:port:)``), never here,
/// so no request can create a deployment before the existing ones are known.
struct DeployServiceLifecycle: Service {
    let service: DeployService
    let logger: Logger

    func run() async throws {
        // Supervision runs until the shutdown begins; the instances it keeps outlive the server.
        await withTaskGroup(of: Void.self) { group in
            if let supervision = service.supervision {
                group.addTask { await cancelWhenGracefulShutdown { await supervision.run() } }
            }
            group.addTask {
                try? await gracefulShutdown()
                logger.info("shutting down: cancelling running deployments")
                await service.shutdown()
            }
        }
    }
}
