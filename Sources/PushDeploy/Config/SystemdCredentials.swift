/// Files in systemd's credentials directory, named in the config as `$CREDENTIALS_DIRECTORY/<id>`.
///
/// A unit that loads a secret with `LoadCredential=api-token:/etc/pushdeploy/credentials/api-token` finds it at
/// `$CREDENTIALS_DIRECTORY/api-token`: a read-only folder systemd fills when the unit starts, readable by the unit's
/// user only, while the source file stays root's. The folder's path depends on the unit's name
/// (`/run/credentials/pushdeploy.service`), so the config names the variable, not the folder. Any path value takes
/// the form (`token_file`, `secret_file`, `ssh_key`, `known_hosts`, …).
public enum SystemdCredentials {
    /// The variable systemd sets for a unit with `LoadCredential=`; never passed on to builds, hooks or apps.
    public static let variable = "CREDENTIALS_DIRECTORY"

    private static let prefixes = ["$\(variable)/", "${\(variable)}/"]

    /// The file `value` names in the credentials directory, or nil when `value` does not start with
    /// `$CREDENTIALS_DIRECTORY/` (or `${CREDENTIALS_DIRECTORY}/`).
    ///
    /// When the variable is not set (pushdeploy runs outside such a unit), `value` comes back as written, so that the
    /// error about the missing file names the variable.
    static func path(_ value: String, environment: [String: String]) -> String? {
        guard let prefix = prefixes.first(where: value.hasPrefix) else { return nil }
        guard let folder = environment[variable], folder.hasPrefix("/") else { return value }
        let id = value.dropFirst(prefix.count)
        return (folder.hasSuffix("/") ? String(folder.dropLast()) : folder) + "/" + id
    }
}
