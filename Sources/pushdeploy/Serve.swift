import ArgumentParser
import Foundation
import Logging
import PushDeploy
import PushDeployServer
#if canImport(Glibc)
import Glibc
#endif

/// `pushdeploy serve`: the webhook and API server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server: webhooks, the API, the deploy queues.")

    @Option(help: "The config file.")
    var config = "/etc/pushdeploy/pushdeploy.yml"

    @Option(help: "Listen on this port instead of the config's.")
    var port: Int?

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "pushdeploy")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let loaded: Config
        do {
            loaded = try ConfigLoader().load(path: config)
        } catch {
            FileHandle.standardError.write(Data("pushdeploy: \(error.description)\n".utf8))
            throw ExitCode.failure
        }
        try await runReporting {
            let history = DeploymentStore(stateDirectory: loaded.stateDirectory)
            let parts = RolloutParts.standard(config: loaded, releases: FileReleaseStore(stateDirectory: loaded.stateDirectory))
            let service = DeployService(config: loaded, store: history, runner: Deployer.standard(config: loaded, history: history, parts: parts))
            for deployment in try await service.open() {
                logger.warning("deployment \(deployment.app)/\(deployment.id) was interrupted by a restart (\(deployment.error ?? ""))")
            }
            // Before the first request: re-adopt what still runs, stop what a killed deployment half-started.
            let reconciler = InstanceReconciler(parts: parts)
            for app in loaded.apps {
                do {
                    for note in try await reconciler.reconcile(app) { logger.notice("\(app.name): \(note)") }
                    if let supervisor = parts.supervisor as? RunnerAppSupervisor {
                        let known = try await parts.state.state(app: app.name).entries.map(\.instance)
                        for note in await supervisor.stopStrays(app: app, known: known, log: MemoryDeploymentLog()) {
                            logger.notice("\(app.name): \(note)")
                        }
                    }
                } catch {
                    logger.error("\(app.name): could not reconcile the running instances with nginx: \(error)")
                }
            }
            for path in await service.store.unreadableRecords {
                logger.error("deployment record \(path) cannot be read; it is left as it is and its id stays taken")
            }
            logger.info("pushdeploy serving \(loaded.apps.count) app(s) on \(loaded.listen.host):\(port ?? loaded.listen.port), state in \(loaded.stateDirectory)")
            try await buildApplication(service: service, logger: logger, port: port).runService()
        }
    }
}
