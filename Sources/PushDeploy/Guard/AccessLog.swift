#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One request as nginx logged it in pushdeploy's format:
/// `log_format pushdeploy '$msec\t$status\t$upstream_addr\t$upstream_status\t$request_time';`
public struct AccessLogEntry: Sendable, Equatable {
    /// Seconds since 1970 (`$msec`).
    public var time: Double
    public var status: Int
    /// The backend ports tried, in order (`127.0.0.1:8081, 127.0.0.1:8082`); empty when nginx answered itself.
    public var ports: [Int]
    /// The answer of each backend tried; nil where there was none (a refused connection, a timeout).
    public var upstreamStatuses: [Int?]
    /// Seconds (`$request_time`).
    public var seconds: Double

    /// The backend that gave the final answer: the last one tried.
    public var port: Int? { ports.last }

    /// A failure of the backend it reached: its 5xx, or no answer from it at all (nginx's own 502 or 504).
    public var isFailure: Bool {
        if let last = upstreamStatuses.last, let status = last { return status >= 500 }
        return status >= 500
    }

    /// Parses one line; nil for a line that is not in the format (another log format, a torn last line).
    public init?(line: Substring) {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count >= 5, let time = Double(fields[0]), let status = Int(fields[1]), let seconds = Double(fields[4]) else { return nil }
        self.time = time
        self.status = status
        self.seconds = seconds
        // Several tries are separated by commas, internal redirects by " : ".
        let split = { (text: Substring) in text.replacingOccurrences(of: " : ", with: ",").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        ports = split(fields[2]).compactMap { address in address.lastIndex(of: ":").flatMap { Int(address[address.index(after: $0)...]) } }
        upstreamStatuses = split(fields[3]).map { Int($0) }
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

/// What nginx saw per backend port over a sliding window: answers, failures, latency.
public struct BackendWindow: Sendable {
    private var entries: [AccessLogEntry] = []
    public let window: Duration

    public init(window: Duration) {
        self.window = window
    }

    /// Adds entries and forgets those older than the window before `now`.
    public mutating func add(_ new: [AccessLogEntry], now: Double = Date().timeIntervalSince1970) {
        entries += new
        let oldest = now - Double(window.components.seconds) - Double(window.components.attoseconds) / 1e18
        entries.removeAll { $0.time < oldest }
    }

    /// The figures of `port` in the window.
    public func figures(port: Int) -> GuardFigures {
        let mine = entries.filter { $0.port == port }
        let failures = mine.filter(\.isFailure).count
        let latencies = mine.map(\.seconds).sorted()
        let p99 = latencies.isEmpty ? nil : latencies[min(latencies.count - 1, Int((Double(latencies.count) * 0.99).rounded(.up)) - 1)]
        return GuardFigures(requests: mine.count, failures: failures, p99Seconds: p99)
    }
}

/// A backend's requests, failures and p99 latency in the guard's window.
public struct GuardFigures: Sendable, Equatable, CustomStringConvertible {
    public var requests: Int
    public var failures: Int
    public var p99Seconds: Double?

    public var errorRatio: Double { requests == 0 ? 0 : Double(failures) / Double(requests) }

    public var description: String {
        "\(failures) of \(requests) requests failed (\(String(format: "%.1f", errorRatio * 100)) %)"
            + (p99Seconds.map { String(format: ", p99 %.3f s", $0) } ?? "")
    }

    /// Why these figures break `config`, or nil when they do not (or are too few to judge).
    public func verdict(_ config: GuardConfig) -> String? {
        guard requests >= config.minRequests else { return nil }
        if errorRatio > config.maxErrorRatio {
            return "the guard: \(description), above \(String(format: "%.1f", config.maxErrorRatio * 100)) %"
        }
        if let ceiling = config.maxP99, let p99 = p99Seconds, p99 > Double(ceiling.components.seconds) + Double(ceiling.components.attoseconds) / 1e18 {
            return "the guard: \(description), above the p99 ceiling of \(DurationParser.format(ceiling))"
        }
        return nil
    }
}
