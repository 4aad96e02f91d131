#if canImport(Glibc)
import Synchronization
import Glibc
#endif
import Foundation

/// Where a deployment's output goes as it happens: pushdeploy's own lines and the tools' output.
public protocol DeploymentLog: Sendable {
    /// Appends raw output (a tool's stdout or stderr) as it arrives.
    func write(_ text: String)
}

extension DeploymentLog {
    /// Appends one line of pushdeploy's own, stamped with the time.
    public func line(_ text: String) {
        let stamp = Date().formatted(.iso8601.time(includingFractionalSeconds: true))
        write("[\(stamp)] \(text)\n")
    }
}

/// A deployment log appended to a file, capped in size: past `maxBytes` its start is cut, the tail kept,
/// and the cut marked on the first line.
public final class FileDeploymentLog: DeploymentLog {
    private struct Open: Sendable {
        var fd: Int32
        var size: Int
    }

    public let path: String
    public let maxBytes: Int
    private let file: Mutex<Open>

    /// Opens (or creates, mode 0640) the log for appending; a symbolic link at `path` is refused.
    public init(path: String, maxBytes: Int = AppHistorySettings.defaultLogMaxBytes) throws {
        self.path = path
        self.maxBytes = max(maxBytes, 1024)
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw FileError(operation: "open", path: path, errno: errno) }
        var info = stat()
        let size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        file = Mutex(Open(fd: fd, size: size))
    }

    deinit {
        _ = file.withLock { close($0.fd) }
    }

    public func write(_ text: String) {
        var text = text
        file.withLock { open in
            text.withUTF8 { buffer in
                guard let base = buffer.baseAddress else { return }
                if (try? AtomicFile.writeAll(UnsafeRawBufferPointer(start: base, count: buffer.count), to: open.fd, path: path)) != nil {
                    open.size += buffer.count
                }
            }
            if open.size > maxBytes { cut(&open) }
        }
    }

    /// Keeps the last half of the cap, from a line start, behind a line that says what was cut.
    private func cut(_ open: inout Open) {
        let keep = maxBytes / 2
        var tail = [UInt8](repeating: 0, count: keep)
        let count = pread(open.fd, &tail, keep, off_t(open.size - keep))
        guard count > 0 else { return }
        tail.removeLast(keep - count)
        if let newline = tail.firstIndex(of: UInt8(ascii: "\n")), newline < tail.count - 1 {
            tail.removeFirst(newline + 1)
        }
        let dropped = open.size - tail.count
        let marker = "[pushdeploy cut the first \(dropped) bytes of this log: it is kept under \(maxBytes) bytes]\n"
        let data = Data(marker.utf8) + Data(tail)
        do {
            try AtomicFile.write(data, to: path)
            let fd = Glibc.open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { return }
            close(open.fd)
            open = Open(fd: fd, size: data.count)
        } catch {
            return  // the log grows on; a full disk is reported by the deployment itself
        }
    }

    /// The log at `path` from byte `offset` on (at most 1 MiB at a time); a file shorter than `offset` was cut
    /// since, and is read from its start.
    public static func read(path: String, from offset: Int, limit: Int = 1 << 20) -> LogChunk {
        let fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return LogChunk(data: Data(), nextOffset: offset) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return LogChunk(data: Data(), nextOffset: offset) }
        let size = Int(info.st_size)
        let cut = size < offset
        let start = cut ? 0 : offset
        let count = min(size - start, limit)
        guard count > 0 else { return LogChunk(data: Data(), nextOffset: start, cut: cut) }
        var buffer = [UInt8](repeating: 0, count: count)
        let got = pread(fd, &buffer, count, off_t(start))
        guard got > 0 else { return LogChunk(data: Data(), nextOffset: start, cut: cut) }
        return LogChunk(data: Data(buffer[..<got]), nextOffset: start + got, cut: cut)
    }
}

/// A log kept in memory, for unit tests.
public final class MemoryDeploymentLog: DeploymentLog {
    private let storage = Mutex<String>("")

    public init() {}

    public func write(_ text: String) {
        storage.withLock { $0 += text }
    }

    /// Everything written so far.
    public var text: String { storage.withLock { $0 } }
}
