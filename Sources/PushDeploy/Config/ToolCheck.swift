import Foundation

/// Checks that the programs a config names can be found, for `pushdeploy check`.
public enum ToolCheck {
    /// A problem for every program that is not on `PATH` (or not executable where a path is given).
    public static func problems(_ config: Config, path: String = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        for app in config.apps {
            let base = "apps.\(app.name)"
            var programs: [(String, String)] = [("\(base).run.command", app.run.command[0])]
            // A relative build program (./gradlew) lives in the checkout, which check cannot see.
            if !app.build.command[0].hasPrefix(".") { programs.append(("\(base).build.command", app.build.command[0])) }
            if let nginx = app.nginx {
                programs.append(("\(base).nginx.test", nginx.test[0]))
                programs.append(("\(base).nginx.reload", nginx.reload[0]))
            }
            for (key, program) in programs where find(program, path: path) == nil {
                problems.append(ConfigProblem(path: key, message: "program '\(program)' is not installed or not on PATH"))
            }
        }
        return problems
    }

    /// The full path of `program`, searched on `path` unless it names a path itself.
    public static func find(_ program: String, path: String) -> String? {
        if program.contains("/") {
            return FileManager.default.isExecutableFile(atPath: program) ? program : nil
        }
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
