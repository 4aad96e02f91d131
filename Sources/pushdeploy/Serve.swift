import ArgumentParser
import Foundation
import Logging
import PushDeploy
import PushDeployServer

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
        // Files and folders pushdeploy creates are not readable by others (0640/0750 at most).
        umask(0o027)
        for warning in loaded.warnings { logger.warning("\(warning)") }
        try await runReporting {
            let service = DeployService.standard(config: loaded)
            for deployment in try await service.open() {
                logger.warning("deployment \(deployment.app)/\(deployment.id) was interrupted by a restart (\(deployment.error ?? ""))")
            }
            for path in await service.history.unreadableRecords() {
                logger.error("deployment record \(path) cannot be read; it is left as it is and its id stays taken")
            }
            for (app, note) in await service.reconcileInstances() { logger.notice("\(app): \(note)") }
            logger.info("pushdeploy serving \(loaded.apps.count) app(s) on \(loaded.listen.host):\(port ?? loaded.listen.port), state in \(loaded.stateDirectory)")
            try await buildApplication(service: service, logger: logger, port: port).runService()
        }
    }
}
