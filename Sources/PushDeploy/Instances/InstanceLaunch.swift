import Foundation

/// What one instance is started with: `run.command` with its placeholders filled in, its folder and its extra environment.
struct InstanceLaunch: Sendable, Equatable {
    /// The program first; never joined into a shell string.
    var arguments: [String]
    /// Variables set on top of pushdeploy's own environment: `run.env`, then `PORT` and `DEPLOY_*`.
    var environment: [String: String]
    /// The release's folder (the jar's folder).
    var workingDirectory: String
    var jarPath: String

    /// Fills in `{jar}`, `{port}`, `{slot}`, `{version}`, `{commit}`, `{app}` and `{release_dir}` in every argument and `run.env` value.
    init(release: Release, run: RunConfig, port: Int, slot: String, jarPath: String) {
        let releaseDirectory = (jarPath as NSString).deletingLastPathComponent
        let values = [
            "{jar}": jarPath, "{port}": String(port), "{slot}": slot, "{version}": release.version,
            "{commit}": release.commit, "{app}": release.app, "{release_dir}": releaseDirectory,
        ]
        func fill(_ text: String) -> String {
            guard text.contains("{") else { return text }
            return values.reduce(text) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
        }
        arguments = run.command.map(fill)
        var environment = run.env.mapValues(fill)
        environment["PORT"] = String(port)
        environment["DEPLOY_APP"] = release.app
        environment["DEPLOY_VERSION"] = release.version
        environment["DEPLOY_COMMIT"] = release.commit
        environment["DEPLOY_SLOT"] = slot
        self.environment = environment
        workingDirectory = releaseDirectory
        self.jarPath = jarPath
    }

    /// The command as a shell would need it quoted, for logs and errors only.
    var commandDescription: String { Command(arguments).description }
}
