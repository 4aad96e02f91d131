#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes files so that a reader (or a crash) sees the old content or the new, never a torn one.
public enum AtomicFile {
    /// Replaces `path` with `data`: write a temporary file beside it, fsync it, rename it over, fsync the folder.
    public static func write(_ data: Data, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary = "\(directory)/.\(name).\(getpid()).\(UInt32.random(in: 0 ... .max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(operation: "create", path: temporary, errno: errno) }
        var closed = false
        defer {
            if !closed { close(fd) }
        }
        do {
            try data.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw FileError(operation: "write", path: temporary, errno: errno)
                    }
                    offset += written
                }
            }
            guard fsync(fd) == 0 else { throw FileError(operation: "fsync", path: temporary, errno: errno) }
            closed = true
            guard close(fd) == 0 else { throw FileError(operation: "close", path: temporary, errno: errno) }
            guard rename(temporary, path) == 0 else { throw FileError(operation: "rename", path: path, errno: errno) }
        } catch {
            unlink(temporary)
            throw error
        }
        try syncDirectory(directory)
    }

    /// Flushes a folder's entries (a rename or a new file) to disk.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(operation: "open", path: directory, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError(operation: "fsync", path: directory, errno: errno) }
    }

    /// Creates a folder and its parents (mode 0755 unless given).
    public static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FileError(operation: "mkdir", path: path, errno: EIO, detail: error.localizedDescription)
        }
    }
}

/// A file system call that failed, with the path and the reason.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var code: Int32
    public var detail: String?

    public init(operation: String, path: String, errno code: Int32, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.code = code
        self.detail = detail
    }

    public var description: String {
        "\(operation) \(path): \(detail ?? String(cString: strerror(code)))"
    }
}
