import Foundation

/// The Gradle init script that stamps the release version on the build, whatever `build.gradle` says.
///
/// It runs before the build script, and its `afterEvaluate` runs after it: so `project.version` (and with it
/// the jar's file name) and every `Jar` task's `Implementation-Version` end up as the release version even when
/// the project sets its own. `BootJar` is a `Jar`, so Spring Boot's task is covered. Works with Gradle 4.4
/// (Debian's) up to 8.x.
///
/// The script never changes and keeps one path, so a warm daemon compiles it once; the version comes with each
/// build as `-PpushdeployVersion=...`, because command-line properties reach a warm daemon reliably where the
/// client's environment (`DEPLOY_VERSION`, the fallback) may not. A script with the version written into it
/// cost about half a second of script compilation on every build.
enum GradleInitScript {
    /// The file name in the scratch folder.
    static let fileName = "pushdeploy-release-version.init.gradle"

    /// True when the command runs Gradle (`gradle`, `./gradlew`, `/opt/gradle/bin/gradle`), which takes `-I`.
    static func applies(to command: [String]) -> Bool {
        guard let program = command.first else { return false }
        let name = (program as NSString).lastPathComponent.lowercased()
        return ["gradle", "gradlew", "gradle.bat", "gradlew.bat"].contains(name)
    }

    /// The command with `-I <script> -PpushdeployVersion=<version>` right after the program.
    static func command(_ command: [String], script: String, version: String) -> [String] {
        guard applies(to: command) else { return command }
        return [command[0], "-I", script, "-PpushdeployVersion=\(version)"] + command.dropFirst()
    }

    /// Writes the script into `directory` unless it is already there as it should be; returns its path.
    static func install(in directory: String) throws -> String {
        let path = (directory as NSString).appendingPathComponent(fileName)
        let data = Data(text.utf8)
        if FileManager.default.contents(atPath: path) != data {
            try AtomicFile.makeDirectory(directory)
            try AtomicFile.write(data, to: path)
        }
        return path
    }

    static let text = """
        // Written by pushdeploy: stamps the release version on every project and every jar, after build.gradle
        // has set its own. The version comes as -PpushdeployVersion (else DEPLOY_VERSION).
        def pushdeployVersion = gradle.startParameter.projectProperties['pushdeployVersion'] ?: System.getenv('DEPLOY_VERSION')
        if (pushdeployVersion) {
            allprojects {
                afterEvaluate { project ->
                    project.version = pushdeployVersion
                    project.tasks.withType(org.gradle.api.tasks.bundling.Jar) { jar ->
                        jar.manifest.attributes('Implementation-Version': pushdeployVersion)
                    }
                }
            }
        }

        """
}
