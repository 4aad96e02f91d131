import Foundation
import PushDeploy

/// A scratch folder for one git test, with the `git` CLI to make fixture repositories (only tests use the CLI).
struct GitScratch {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("pushdeploy-git-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    func path(_ name: String) -> String { "\(root)/\(name)" }

    /// Runs `git` with `arguments` in `folder` and returns its trimmed output; throws on a non-zero exit.
    @discardableResult
    func git(_ arguments: [String], in folder: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        var environment = ProcessInfo.processInfo.environment
        environment["GIT_AUTHOR_NAME"] = "Test"
        environment["GIT_AUTHOR_EMAIL"] = "test@example.invalid"
        environment["GIT_COMMITTER_NAME"] = "Test"
        environment["GIT_COMMITTER_EMAIL"] = "test@example.invalid"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0 else {
            throw GitFixtureError(message: "git \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    /// Creates a repository `name` on branch `main` with one commit; returns its folder.
    func makeOrigin(_ name: String = "origin") throws -> String {
        let folder = path(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try git(["init", "-q", "-b", "main"], in: folder)
        try commit(in: folder, file: "README.md", content: "first\n", message: "first commit")
        return folder
    }

    /// Writes `file` and commits it; returns the new commit's full id.
    @discardableResult
    func commit(in folder: String, file: String, content: String, message: String) throws -> String {
        let target = "\(folder)/\(file)"
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try content.write(toFile: target, atomically: true, encoding: .utf8)
        try git(["add", file], in: folder)
        try git(["commit", "-q", "-m", message], in: folder)
        return try git(["rev-parse", "HEAD"], in: folder)
    }

    /// The text of a file, or nil when it does not exist.
    func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// A fixture step that failed.
struct GitFixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// `git http-backend` behind basic auth on a loopback port (Fixtures/git-http-server.py), stopped by `stop()`.
final class GitHTTPServer {
    let port: Int
    let rejectionsFile: String
    private let process: Process
    private let input: Pipe

    /// Starts serving the repositories under `root` to `user` with `token`.
    init(root: String, user: String, token: String, scratch: GitScratch) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/git-http-server.py").path
        rejectionsFile = scratch.path("rejections.txt")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, root, user, token, rejectionsFile]
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            process.waitUntilExit()
            throw GitFixtureError(message: "the git http server did not start")
        }
        self.port = port
    }

    /// How many requests the server refused with 401.
    var rejections: Int {
        (FileManager.default.contents(atPath: rejectionsFile).map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(separator: "\n").count
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
