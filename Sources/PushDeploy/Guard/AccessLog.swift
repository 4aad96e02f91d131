#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One request as nginx logged it in pushdeploy's format:
/// `log_format pushdeploy '$msec\t$status\t$upstream_addr\t$upstream_status\t$request_time\t$upstream_response_time';`
/// (the last field is optional: without it, a try's time is the request's).
public struct AccessLogEntry: Sendable, Equatable {
    /// One backend nginx tried for the request: the first, then each retry (`proxy_next_upstream`) or fallback (`error_page`).
    public struct Try: Sendable, Equatable {
        public var port: Int
        /// The backend's answer; nil where there was none (a refused connection, a timeout).
        public var status: Int?
        /// How long the backend took (`$upstream_response_time`), or the whole request's time when not logged.
        public var seconds: Double

        /// A 5xx, or no answer at all: what the guard counts against the backend.
        public var isFailure: Bool { status.map { $0 >= 500 } ?? true }
    }

    /// Seconds since 1970 (`$msec`).
    public var time: Double
    public var status: Int
    /// Every backend tried, in order; empty when nginx answered itself.
    public var tries: [Try]
    /// Seconds (`$request_time`).
    public var seconds: Double

    /// The backend that gave the final answer: the last one tried.
    public var port: Int? { tries.last?.port }

    /// A failure as the client saw it: the last backend's 5xx, or nginx's own 502 or 504.
    public var isFailure: Bool { tries.last?.isFailure ?? (status >= 500) }

    /// Parses one line; nil for a line that is not in the format (another log format, a torn last line).
    public init?(line: Substring) {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count >= 5, let time = Double(fields[0]), let status = Int(fields[1]), let seconds = Double(fields[4]) else { return nil }
        self.time = time
        self.status = status
        self.seconds = seconds
        // Several tries are separated by commas, internal redirects (error_page) by " : ".
        let split = { (text: Substring) in text.replacingOccurrences(of: " : ", with: ",").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let addresses = split(fields[2])
        let statuses = split(fields[3])
        let times = fields.count > 5 ? split(fields[5]) : []
        tries = addresses.indices.compactMap { index in
            let address = addresses[index]
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
            let isLast = index == addresses.count - 1
            let tried = index < times.count ? Double(times[index]) : nil
            return Try(port: port, status: index < statuses.count ? Int(statuses[index]) : nil,
                       seconds: tried ?? (isLast || times.isEmpty ? seconds : 0))
        }
    }
}

/// Follows nginx's access log from where it ends when it is opened: the lines written since, as they come.
///
/// Rotation-safe: a file replaced (logrotate's rename) is followed again from its start once the old one is read
/// out; a file truncated in place (copytruncate) is read again from its start when it is found shorter than what
/// was read of it (lines written faster than the follower's polls can hide a truncation: prefer rename rotation).
public final class AccessLogFollower {
    public let path: String
    private var fd: Int32 = -1
    private var inode: UInt64 = 0
    private var offset: Int = 0
    private var pending = Data()

    /// Opens `path` and skips what is there already; a missing file is waited for (nginx creates it).
    public init(path: String) {
        self.path = path
        reopen(fromStart: false)
    }

    deinit { if fd >= 0 { close(fd) } }

    private func reopen(fromStart: Bool) {
        if fd >= 0 { close(fd) }
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { inode = 0; offset = 0; return }
        var info = stat()
        fstat(fd, &info)
        inode = UInt64(info.st_ino)
        offset = fromStart ? 0 : Int(info.st_size)
        pending = Data()
    }

    /// The complete lines written since the last call.
    public func read() -> [AccessLogEntry] {
        var entries: [AccessLogEntry] = []
        if fd < 0 { reopen(fromStart: true) }
        guard fd >= 0 else { return [] }
        entries += drain()
        var onDisk = stat()
        if stat(path, &onDisk) == 0, UInt64(onDisk.st_ino) != inode {
            reopen(fromStart: true)  // rotated: what is left of the old file was read above
            entries += drain()
        } else {
            var current = stat()
            if fstat(fd, &current) == 0, Int(current.st_size) < offset {
                offset = 0  // truncated in place
                pending = Data()
                entries += drain()
            }
        }
        return entries
    }

    private func drain() -> [AccessLogEntry] {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = pread(fd, &buffer, buffer.count, off_t(offset))
            guard count > 0 else { break }
            pending.append(contentsOf: buffer[..<count])
            offset += count
        }
        guard let lastNewline = pending.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
        let complete = pending[pending.startIndex...lastNewline]
        pending = Data(pending[(lastNewline + 1)...])
        return String(decoding: complete, as: UTF8.self).split(separator: "\n").compactMap(AccessLogEntry.init(line:))
    }
}

/// What nginx saw per backend port over a sliding window: tries, failures, latency.
///
/// Every try counts against the backend it reached: a request the new release failed and the warm slot then
/// answered (the blue-green fallback) is a failure of the new release, though the client got its answer.
public struct BackendWindow: Sendable {
    private struct Seen: Sendable {
        var time: Double
        var attempt: AccessLogEntry.Try
    }

    private var seen: [Seen] = []
    public let window: Duration

    public init(window: Duration) {
        self.window = window
    }

    /// Adds entries and forgets those older than the window before `now`.
    public mutating func add(_ new: [AccessLogEntry], now: Double = Date().timeIntervalSince1970) {
        for entry in new {
            seen += entry.tries.map { Seen(time: entry.time, attempt: $0) }
        }
        let oldest = now - window.seconds
        seen.removeAll { $0.time < oldest }
    }

    /// The figures of the backends on `ports` in the window, together.
    public func figures(ports: Set<Int>) -> GuardFigures {
        let mine = seen.filter { ports.contains($0.attempt.port) }.map(\.attempt)
        let latencies = mine.map(\.seconds).sorted()
        let p99 = latencies.isEmpty ? nil : latencies[min(latencies.count - 1, Int((Double(latencies.count) * 0.99).rounded(.up)) - 1)]
        return GuardFigures(requests: mine.count, failures: mine.filter(\.isFailure).count, p99Seconds: p99)
    }

    /// The figures of the backend on `port` in the window.
    public func figures(port: Int) -> GuardFigures {
        figures(ports: [port])
    }
}

/// A backend's requests, failures and p99 latency in the guard's window.
public struct GuardFigures: Sendable, Equatable, Codable, CustomStringConvertible {
    public var requests: Int
    public var failures: Int
    public var p99Seconds: Double?

    public init(requests: Int, failures: Int, p99Seconds: Double?) {
        self.requests = requests
        self.failures = failures
        self.p99Seconds = p99Seconds
    }

    public var errorRatio: Double { requests == 0 ? 0 : Double(failures) / Double(requests) }

    public var description: String {
        "\(failures) of \(requests) requests failed (\(Self.percent(errorRatio)))"
            + (p99Seconds.map { String(format: ", p99 %.3f s", $0) } ?? "")
    }

    /// Why these figures break `config`, or nil when they do not (or are too few to judge).
    ///
    /// The share of failures is judged once `min_requests` requests came, or before when the failures so far already
    /// settle it: more than `max_error_ratio × min_requests` of them put the share of the first `min_requests` above
    /// the limit whatever the rest answer. The p99 ceiling waits for `min_requests`.
    ///
    /// With `stable` (a canary step: the stable release's figures in the same window), the new release is judged
    /// against it: its share of failures may exceed the stable release's by `max_error_ratio`, and its p99 trips
    /// the ceiling only when it is also slower than the stable release's; what fails both is not the new release's doing.
    public func verdict(_ config: GuardConfig, against stable: GuardFigures? = nil) -> String? {
        let baseline = stable.flatMap { $0.requests >= config.minRequests ? $0 : nil }
        let stableSays = baseline.map { "; the stable release: \($0)" } ?? ""
        let allowed = config.maxErrorRatio + (baseline?.errorRatio ?? 0)
        let limit = baseline == nil ? Self.percent(config.maxErrorRatio)
            : "\(Self.percent(allowed)) (the stable release's share + \(Self.percent(config.maxErrorRatio)))"
        guard requests >= config.minRequests else {
            guard Double(failures) > allowed * Double(config.minRequests) else { return nil }
            return "the guard: \(description), so more than \(limit) of the first \(config.minRequests) (min_requests)\(stableSays)"
        }
        if errorRatio > allowed {
            return "the guard: \(description), above \(limit)\(stableSays)"
        }
        if let ceiling = config.maxP99, let p99 = p99Seconds, p99 > ceiling.seconds, p99 > baseline?.p99Seconds ?? 0 {
            return "the guard: \(description), above the p99 ceiling of \(DurationParser.format(ceiling))\(stableSays)"
        }
        return nil
    }

    private static func percent(_ ratio: Double) -> String { String(format: "%.1f %%", ratio * 100) }
}
