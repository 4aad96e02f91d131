#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Points nginx at an app's ports through the include file pushdeploy owns, and proves that it took effect.
///
/// The order: read the old file → write the new one atomically → `nginx -t` → reload → confirm through
/// `verify_url` that new requests reach the new release. A failed test puts the old file back (nginx
/// never loaded the new one); a failed reload or confirmation puts it back and reloads. The test and
/// reload commands are the config's argument lists, so a private nginx (`-p DIR -c conf`) works alike.
/// The form of the file is described at ``NginxInclude``. The deploy queue runs one deployment per app
/// at a time, so two switches never race on the same include file.
public struct NginxTrafficSwitch: TrafficSwitch {
    public var runner: any CommandRunner
    /// The longest `nginx -t` or a reload may take.
    public var commandTimeout: Duration
    /// How long after the reload requests through nginx may take to reach the new release (about 25 ms is usual).
    public var confirmTimeout: Duration
    /// The pause between two confirming requests.
    public var pollInterval: Duration
    /// The longest a switch waits for nginx's old workers to finish their requests (and so stop reaching the old backend).
    public var drainTimeout: Duration = .seconds(10)
    /// One GET; the real one is ``NginxProbe/get(_:timeout:)``, unit tests answer from a script.
    let fetch: @Sendable (NginxProbe.Target, Duration) async -> NginxProbe.Outcome

    /// A switch that runs nginx through `runner` and confirms over real HTTP.
    public init(runner: any CommandRunner = SubprocessCommandRunner(), commandTimeout: Duration = .seconds(30),
                confirmTimeout: Duration = .seconds(5), pollInterval: Duration = .milliseconds(10)) {
        self.init(runner: runner, commandTimeout: commandTimeout, confirmTimeout: confirmTimeout, pollInterval: pollInterval,
                  fetch: { await NginxProbe.get($0, timeout: $1) })
    }

    init(runner: any CommandRunner, commandTimeout: Duration = .seconds(30), confirmTimeout: Duration = .seconds(5),
         pollInterval: Duration = .milliseconds(10),
         fetch: @escaping @Sendable (NginxProbe.Target, Duration) async -> NginxProbe.Outcome) {
        self.runner = runner
        self.commandTimeout = commandTimeout
        self.confirmTimeout = confirmTimeout
        self.pollInterval = pollInterval
        self.fetch = fetch
    }

    public func currentPorts(app: AppConfig) -> [Int]? {
        guard let nginx = app.nginx, let data = FileManager.default.contents(atPath: nginx.includeFile) else { return nil }
        return NginxInclude.ports(in: String(decoding: data, as: UTF8.self))
    }

    public func route(to ports: [Int], canaryPercent: Int?, app: AppConfig, expectVersion: String?, log: any DeploymentLog) async throws {
        guard let nginx = app.nginx else { throw TrafficError.notConfigured(app: app.name) }
        let text = try NginxInclude.render(ports, app: app.name, strategy: app.strategy, canaryPercent: canaryPercent)
        let confirmation = try Confirmation(nginx: nginx, ports: ports, health: app.health)
        let path = nginx.includeFile
        let old = try Self.read(path)
        let portList = canaryPercent.map { "\(ports[0]) and \($0) % to \(ports[1])" } ?? ports.map(String.init).joined(separator: ", ")
        let was = old.flatMap { NginxInclude.ports(in: String(decoding: $0, as: UTF8.self)) }?.map(String.init).joined(separator: ", ")
        log.line("nginx: routing \(app.name) to \(portList) (was \(was ?? "no include file"))")

        let started = ContinuousClock.now
        do {
            try AtomicFile.write(Data(text.utf8), to: path)
        } catch {
            throw TrafficError.fileFailed(path: path, reason: "\(error)")
        }
        var reloadAttempted = false
        do {
            let test = try await runNginx(nginx.test, log: log) { .testFailed(command: $0, reason: $1, output: $2) }
            reloadAttempted = true
            let workersBefore = NginxWorkers.snapshot()
            let reload = try await runNginx(nginx.reload, log: log) { .reloadFailed(command: $0, reason: $1, output: $2) }
            let before = old.flatMap { NginxInclude.ports(in: String(decoding: $0, as: UTF8.self)) } ?? []
            let confirmed = try await confirm(confirmation, ports: ports, before: before, canaryPercent: canaryPercent,
                                              expectVersion: expectVersion, log: log)
            let switched = ContinuousClock.now - started
            // Until nginx's retired workers are gone, one of them may still send a request to a port taken out. Where
            // /proc shows them, the switch waits for them; where it hides other users' processes (ProtectProc=invisible),
            // for the connections to those ports to close: the workers' keep-alive connections to the upstream last
            // as long as the workers do.
            let drainStarted = ContinuousClock.now
            let retired = NginxWorkers.retired(since: workersBefore)
            let removed = Set(before).subtracting(ports)
            let workersGone = await NginxWorkers.waitUntilGone(retired, timeout: drainTimeout)
            let connectionsClosed = await BackendConnections.waitUntilClosed(ports: removed,
                                                                             timeout: max(drainTimeout - (ContinuousClock.now - drainStarted), .zero))
            if !workersGone || !connectionsClosed {
                log.line("nginx: old workers or their connections to \(removed.sorted().map(String.init).joined(separator: ", ")) still there after "
                         + "\(DurationParser.format(drainTimeout)) (requests still running through them); going on")
            }
            log.line("nginx: switched to \(portList) in \(Self.ms(switched)) "
                     + "(test \(Self.ms(test)), reload \(Self.ms(reload)), confirmed after \(Self.ms(confirmed))); "
                     + "old workers and their connections gone after \(Self.ms(ContinuousClock.now - drainStarted))"
                     + (retired.isEmpty ? " (no nginx worker visible in /proc: waited for the connections)" : ""))
        } catch {
            log.line("nginx: switch to \(portList) failed: \(error)")
            let problem = await putBack(old, path: path, reloadWith: reloadAttempted ? nginx.reload : nil, log: log)
            if let problem, let error = error as? TrafficError { throw TrafficError.restoreFailed(after: error, reason: problem) }
            throw error
        }
    }

    /// The old file's bytes, nil when there is none; a file that exists but cannot be read stops the switch,
    /// since it could not be put back.
    private static func read(_ path: String) throws(TrafficError) -> Data? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .fileFailed(path: path, reason: "exists but cannot be read, so it could not be put back after a failure")
        }
        return data
    }

    /// Runs an nginx argument list; returns how long it took or throws the error `failure` makes of it.
    private func runNginx(_ arguments: [String], log: any DeploymentLog,
                          failure: (_ command: String, _ reason: String, _ output: [String]) -> TrafficError) async throws -> Duration {
        let command = Command(arguments)
        let started = ContinuousClock.now
        let result: CommandResult
        do {
            result = try await runner.run(command, log: log, timeout: commandTimeout)
        } catch let error as CommandError {
            switch error {
            case .emptyCommand: throw failure("(empty command)", "the argument list is empty", [])
            case let .launchFailed(_, reason): throw failure(command.description, "could not start: \(reason)", [])
            case let .failed(_, status, tail): throw failure(command.description, status.description, tail)
            case let .timedOut(_, after, tail): throw failure(command.description, "timed out after \(DurationParser.format(after))", tail)
            }
        }
        guard result.status.isSuccess else { throw failure(command.description, result.status.description, result.outputTail) }
        return ContinuousClock.now - started
    }

    /// Puts the old file back (or removes the new one when there was none) and reloads if nginx may have loaded the new one.
    ///
    /// Runs in a task of its own so that a cancelled deployment still gets its old traffic back. Returns what went wrong, if anything.
    private func putBack(_ old: Data?, path: String, reloadWith reload: [String]?, log: any DeploymentLog) async -> String? {
        await Task {
            do {
                if let old {
                    try AtomicFile.write(old, to: path)
                } else if unlink(path) != 0, errno != ENOENT {
                    throw FileError(operation: "unlink", path: path, errno: errno)
                }
            } catch {
                log.line("nginx: could not put the old include file back: \(error)")
                return "\(error)"
            }
            log.line(old == nil ? "nginx: removed the new include file (there was none before)" : "nginx: put the old include file back")
            guard let reload else { return nil }
            do {
                let took = try await runNginx(reload, log: log) { .reloadFailed(command: $0, reason: $1, output: $2) }
                log.line("nginx: reloaded with the old include file in \(Self.ms(took))")
                return nil
            } catch {
                log.line("nginx: reload with the old include file failed: \(error)")
                return "\(error)"
            }
        }.value
    }

    static func ms(_ duration: Duration) -> String { "\(duration.milliseconds) ms" }
}

extension NginxTrafficSwitch {
    /// How a switch is proven: through nginx when `verify_url` is set, else (weaker) each backend directly.
    private enum Confirmation {
        case throughNginx(NginxProbe.Target)
        case backendsDirectly([NginxProbe.Target], health: HealthConfig)

        init(nginx: NginxConfig, ports: [Int], health: HealthConfig) throws(TrafficError) {
            if let url = nginx.verifyURL {
                self = .throughNginx(try NginxProbe.Target(url: url))
            } else {
                self = .backendsDirectly(ports.map { NginxProbe.Target(host: "127.0.0.1", port: $0, path: health.path) }, health: health)
            }
        }
    }

    /// Polls until the answers come from the new release; returns how long that took after the reload.
    ///
    /// Through nginx, the proof is the `X-Pushdeploy-Upstream` header (`$upstream_addr`) naming a port that only the
    /// new configuration routes to (any port of the new set when none is new): that works for any app, whatever its
    /// pages say. A site without the header is checked the old way, by the release's version in the page.
    ///
    /// When the new set only drops ports (a flip back from a canary step, a rolling instance taken out), one answer from
    /// the rest would prove nothing, since the old configuration gave such answers too: ten in a row are asked for.
    /// A canary step is proven by an answer from the new release; a small share takes longer to be seen, so the wait
    /// grows as the share shrinks (10 % and more: `confirmTimeout`; 1 %: ten times that).
    private func confirm(_ confirmation: Confirmation, ports: [Int], before: [Int], canaryPercent: Int?, expectVersion: String?,
                         log: any DeploymentLog) async throws -> Duration {
        let started = ContinuousClock.now
        let allowed = confirmTimeout * max(1, 10 / max(canaryPercent ?? 100, 1))
        let deadline = started + allowed
        switch confirmation {
        case let .throughNginx(target):
            let added = Set(ports).subtracting(before)
            let wanted = canaryPercent != nil ? [ports[1]] : added.isEmpty ? Set(ports) : added
            let inARow = canaryPercent == nil && added.isEmpty && !before.isEmpty && Set(before) != Set(ports) ? 10 : 1
            let portList = wanted.sorted().map(String.init).joined(separator: " or ")
            var sawHeader = false
            var seen = 0
            do {
                // A canary step draws the new release for 1 request in 100/percent: send that many at once.
                let burst = canaryPercent.map { min(20, (100 + $0 - 1) / $0) } ?? 1
                try await poll(target, until: deadline, allowed: allowed, expected: "\(inARow == 1 ? "an answer" : "\(inARow) answers in a row") from port \(portList) in X-Pushdeploy-Upstream",
                               burst: burst) { outcome in
                    guard case let .answered(status, body, upstream) = outcome else { return false }
                    if let upstream {
                        sawHeader = true
                        // nginx's own 502 and 504 also name the backend it tried: they prove nothing.
                        guard status != 502, status != 504, let port = Self.answeringPort(upstream), wanted.contains(port) else {
                            seen = 0
                            return false
                        }
                        seen += 1
                        return seen >= inARow
                    }
                    guard (200..<300).contains(status) else { return false }
                    return expectVersion.map { Self.body(body, names: $0) } ?? true
                }
            } catch let TrafficError.notConfirmed(url, _, waited, lastAnswer) where !sawHeader {
                let expected = (expectVersion.map { "a page naming release \($0)" } ?? "a 2xx answer")
                    + " (nginx sent no X-Pushdeploy-Upstream header, so the page had to name the release: add "
                    + "`add_header X-Pushdeploy-Upstream $upstream_addr always;` to the app's location, as in examples/nginx-site.conf, "
                    + "and the switch is proven for any app)"
                throw TrafficError.notConfirmed(url: url, expected: expected, waited: waited, lastAnswer: lastAnswer)
            }
        case let .backendsDirectly(targets, health):
            log.line("nginx: no verify_url, so nothing proves that nginx sends requests to the new ports; checking each backend "
                     + "directly instead (that shows they answer, not that nginx routes to them). Set nginx.verify_url to confirm through nginx.")
            for target in targets {
                try await poll(target, until: deadline, allowed: allowed, expected: "a healthy answer (\(health.expectStatus)\(health.expectBody.map { ", \"\($0)\"" } ?? ""))") { outcome in
                    guard case let .answered(status, body, _) = outcome, status == health.expectStatus else { return false }
                    return health.expectBody.map { body.contains($0) } ?? true
                }
            }
        }
        return ContinuousClock.now - started
    }

    /// GETs `target` every `pollInterval` until `accepts` says yes; throws ``TrafficError/notConfirmed(url:expected:waited:lastAnswer:)`` at `deadline`.
    ///
    /// `burst` GETs go out at once each round (a canary step: enough that one of them likely draws the new release's
    /// share), and their answers are judged in the order they came.
    private func poll(_ target: NginxProbe.Target, until deadline: ContinuousClock.Instant, allowed: Duration, expected: String, burst: Int = 1,
                      accepts: (NginxProbe.Outcome) -> Bool) async throws {
        var last = "no answer yet"
        let fetch = self.fetch
        while true {
            let left = deadline - ContinuousClock.now
            if left <= .zero {
                throw TrafficError.notConfirmed(url: target.description, expected: expected, waited: allowed, lastAnswer: last)
            }
            // At least a quarter second: a last request cut to nothing would only report its own timeout.
            let timeout = max(min(left, .seconds(2)), .milliseconds(250))
            let outcomes = await withTaskGroup(of: NginxProbe.Outcome.self) { group in
                for _ in 0..<max(burst, 1) { group.addTask { await fetch(target, timeout) } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            for outcome in outcomes {
                if accepts(outcome) { return }
                last = outcome.summary
            }
            try await Task.sleep(for: min(pollInterval, max(deadline - ContinuousClock.now, .zero)))
        }
    }

    /// The port of the backend that answered last in a `$upstream_addr` value (`127.0.0.1:8081, 127.0.0.1:8082`).
    static func answeringPort(_ upstream: String) -> Int? {
        // Servers tried in turn are separated by commas, those of an internal redirect by colons between spaces.
        guard let last = upstream.replacingOccurrences(of: " : ", with: ",").split(separator: ",").last?.trimmingCharacters(in: .whitespaces),
              let colon = last.lastIndex(of: ":") else { return nil }
        return Int(last[last.index(after: colon)...])
    }

    /// True when `version` appears in `body` as a whole word: `1.0` is not found in `demo-app 1.0.1`, but is in `runs 1.0.`.
    static func body(_ body: String, names version: String) -> Bool {
        guard !version.isEmpty else { return true }
        let characters = Array(body)
        let wanted = Array(version)
        func continuesVersion(at index: Int, step: Int) -> Bool {
            guard characters.indices.contains(index) else { return false }
            let character = characters[index]
            if character.isLetter || character.isNumber { return true }
            // A dot or dash continues the version only when more of it follows: `1.0.1` does, `1.0.` does not.
            guard "._+-".contains(character), characters.indices.contains(index + step) else { return false }
            return characters[index + step].isLetter || characters[index + step].isNumber
        }
        var start = 0
        while start + wanted.count <= characters.count {
            if characters[start..<start + wanted.count].elementsEqual(wanted),
               !continuesVersion(at: start - 1, step: -1), !continuesVersion(at: start + wanted.count, step: 1) {
                return true
            }
            start += 1
        }
        return false
    }
}
