/// Starts each app's instances the way its `run.runner` says: detached processes, or `pushdeploy-app@<port>` units.
///
/// An instance recorded without a pid came from systemd; one with a pid is a detached process of ours.
public struct RunnerAppSupervisor: AppSupervisor {
    public var processes: ProcessAppSupervisor
    public var systemd: SystemdAppSupervisor

    public init(processes: ProcessAppSupervisor, systemd: SystemdAppSupervisor) {
        self.processes = processes
        self.systemd = systemd
    }

    public func start(_ release: Release, app: AppConfig, port: Int, slot: String, log: any DeploymentLog) async throws -> Instance {
        switch app.run.runner {
        case .process: try await processes.start(release, app: app, port: port, slot: slot, log: log)
        case .systemd: try await systemd.start(release, app: app, port: port, slot: slot, log: log)
        }
    }

    public func stop(_ instance: Instance, app: AppConfig, log: any DeploymentLog) async throws {
        if instance.pid == nil {
            try await systemd.stop(instance, app: app, log: log)
        } else {
            try await processes.stop(instance, app: app, log: log)
        }
    }

    public func isRunning(_ instance: Instance) async -> Bool {
        instance.pid == nil ? await systemd.isRunning(instance) : await processes.isRunning(instance)
    }
}
