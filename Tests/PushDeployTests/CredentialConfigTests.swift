import Foundation
import Testing
@testable import PushDeploy

/// Secrets named as systemd credentials (`$CREDENTIALS_DIRECTORY/<id>`), and what children inherit.
@Suite("Config: systemd credentials")
struct CredentialConfigTests {
    let scratch = ScratchDirectory()

    /// A config whose API token, GitHub secret and deploy key are credentials.
    private func yaml() -> String {
        """
        state_dir: state
        token_file: $CREDENTIALS_DIRECTORY/api-token
        apps:
          shop:
            repository:
              url: git@github.com:acme/shop.git
              ssh_key: ${CREDENTIALS_DIRECTORY}/deploy-key
              known_hosts: known_hosts
            webhooks: { github: { secret_file: $CREDENTIALS_DIRECTORY/github-secret } }
            slots: { blue: 8081, green: 8082 }
            nginx: { include_file: nginx/shop.inc }
        """
    }

    /// Writes the credentials as systemd would (mode 0400) into `credentials/`, and the config; loads it.
    private func load(_ text: String, environment: [String: String]) throws(ConfigError) -> Config {
        for (name, value) in ["api-token": "api-token-value\n", "github-secret": "hook-secret\n", "deploy-key": "KEY\n"] {
            let file = scratch.write("credentials/\(name)", value)
            chmod(file, 0o400)
        }
        scratch.write("known_hosts", "github.com ssh-ed25519 AAAA\n")
        scratch.write("nginx/.keep", "")
        return try ConfigLoader(environment: environment).load(path: scratch.write("pushdeploy.yml", text))
    }

    @Test("a secret named $CREDENTIALS_DIRECTORY/<id> is read from the unit's credentials folder")
    func secretsFromCredentials() throws {
        let config = try load(yaml(), environment: ["CREDENTIALS_DIRECTORY": scratch.path + "/credentials"])
        #expect(config.token == Secret("api-token-value"))
        let app = try #require(config.app(named: "shop"))
        #expect(app.webhooks.github == Secret("hook-secret"))
        #expect(app.repository.sshKey == scratch.path + "/credentials/deploy-key")
        // A credential file is 0400: nothing to warn about.
        #expect(config.warnings.isEmpty, "\(config.warnings)")
    }

    @Test("outside a unit with LoadCredential= the missing credential is reported by the name written in the config")
    func unsetCredentialsDirectory() {
        let problems: [String]
        do {
            _ = try load(yaml(), environment: [:])
            problems = []
        } catch {
            problems = error.problems.map(\.description)
        }
        #expect(problems.contains { $0.contains("token_file: secret file $CREDENTIALS_DIRECTORY/api-token is missing or unreadable") },
                "\(problems)")
        #expect(problems.contains { $0.contains("${CREDENTIALS_DIRECTORY}/deploy-key is missing or unreadable") }, "\(problems)")
    }

    @Test func credentialPaths() {
        let environment = ["CREDENTIALS_DIRECTORY": "/run/credentials/pushdeploy.service"]
        #expect(SystemdCredentials.path("$CREDENTIALS_DIRECTORY/api-token", environment: environment)
            == "/run/credentials/pushdeploy.service/api-token")
        #expect(SystemdCredentials.path("${CREDENTIALS_DIRECTORY}/api-token", environment: ["CREDENTIALS_DIRECTORY": "/run/c/"])
            == "/run/c/api-token")
        #expect(SystemdCredentials.path("/etc/pushdeploy/token", environment: environment) == nil)
        #expect(SystemdCredentials.path("token", environment: environment) == nil)
        #expect(SystemdCredentials.path("$CREDENTIALS_DIRECTORYX/api-token", environment: environment) == nil)
        #expect(SystemdCredentials.path("$CREDENTIALS_DIRECTORY/api-token", environment: [:]) == "$CREDENTIALS_DIRECTORY/api-token")
        // A relative folder is no systemd credentials folder: left as written, so the file is not found.
        #expect(SystemdCredentials.path("$CREDENTIALS_DIRECTORY/api-token", environment: ["CREDENTIALS_DIRECTORY": "run"])
            == "$CREDENTIALS_DIRECTORY/api-token")
    }

    @Test("builds, hooks and apps never get CREDENTIALS_DIRECTORY or a secret of the server's environment")
    func childrenDoNotInheritCredentials() {
        let server = ["CREDENTIALS_DIRECTORY": "/run/credentials/pushdeploy.service", "PUSHDEPLOY_TOKEN": "t0k3n",
                      "PATH": "/usr/bin:/bin", "HOME": "/var/lib/pushdeploy", "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "2"]
        let child = ChildEnvironment.base(from: server)
        #expect(child == ["PATH": "/usr/bin:/bin", "HOME": "/var/lib/pushdeploy", "LANG": "C.UTF-8"])
        #expect(ChildEnvironment.base(from: [:]) == ["PATH": "/usr/local/bin:/usr/bin:/bin"])
        #expect(ChildEnvironment.make(["DEPLOY_VERSION": "1"])[SystemdCredentials.variable] == nil)
    }
}
