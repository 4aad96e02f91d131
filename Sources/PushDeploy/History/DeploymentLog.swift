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

/// A deployment log appended to a file; each write is one `write(2)` on an `O_APPEND` descriptor.
public final class FileDeploymentLog: DeploymentLog {
    // The descriptor never changes after init and write(2) on O_APPEND is safe from any thread.
    private let fd: Int32
    public let path: String

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(operation: "open", path: path, errno: errno) }
    }

    deinit { close(fd) }

    public func write(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
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
