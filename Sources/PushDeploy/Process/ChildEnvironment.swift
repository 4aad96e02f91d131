import Foundation

/// The environment under every program pushdeploy starts (builds, hooks, nginx commands, app instances): never
/// the server's own, which may hold the API token, webhook secrets or git credentials (`token_env`, a unit's
/// `Environment=`), or name the folder of its systemd credentials (`CREDENTIALS_DIRECTORY`). A child gets `PATH`,
/// `HOME`, `LANG` and `JAVA_HOME` from pushdeploy when they are set, then what its command adds (`build.env`,
/// `run.env`, `DEPLOY_*`).
public enum ChildEnvironment {
    /// The variables taken from pushdeploy's environment.
    public static let passedThrough = ["PATH", "HOME", "LANG", "JAVA_HOME"]

    /// Read once, at the first child.
    private static let base = base(from: ProcessInfo.processInfo.environment)

    /// The base with `extra` on top.
    public static func make(_ extra: [String: String]) -> [String: String] {
        base.merging(extra) { $1 }
    }

    /// What a child takes from `own`, the server's environment: the ``passedThrough`` variables, and a `PATH` always.
    static func base(from own: [String: String]) -> [String: String] {
        var base: [String: String] = [:]
        for name in passedThrough { base[name] = own[name] }
        if base["PATH"]?.isEmpty ?? true { base["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        return base
    }
}
