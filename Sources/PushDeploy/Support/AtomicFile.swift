#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes files so that a reader (or a crash) sees the old content or the new, never a torn one.
public enum AtomicFile {
    /// Replaces `path` with `data`: write a temporary file beside it, fsync it, rename it over, fsync the folder.
    /// The file is created with `mode`.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o640) throws {
        let temporary = temporaryPath(for: path)
        try writeSynced(data, to: temporary, mode: mode)
        guard rename(temporary, path) == 0 else {
            let error = FileError(operation: "rename", path: path, errno: errno)
            unlink(temporary)
            throw error
        }
        try syncDirectory(parentDirectory(of: path))
    }

    /// `<folder>/.<name>.<pid>.<random>.tmp`, beside the file it becomes.
    static func temporaryPath(for path: String) -> String {
        let name = path.utf8.lastIndex(of: UInt8(ascii: "/")).map { path[path.index(after: $0)...] } ?? path[...]
        return "\(parentDirectory(of: path))/.\(name).\(processID).\(UInt32.random(in: 0 ... .max)).tmp"
    }

    private static let processID = getpid()

    /// The folder a path is in (`.` for a bare name, `/` for a file at the root).
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Writes all of `bytes` to an open file.
    static func writeAll<Bytes: ContiguousBytes>(_ bytes: Bytes, to fd: Int32, path: String) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw FileError(operation: "write", path: path, errno: errno)
                }
                offset += count
            }
        }
    }

    /// Creates `path` (which must not exist, and is never followed as a link), writes `data` and fsyncs it.
    private static func writeSynced(_ data: Data, to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileError(operation: "create", path: path, errno: errno) }
        defer { close(fd) }
        do {
            try writeAll(data, to: fd, path: path)
            if fsync(fd) != 0 { throw FileError(operation: "fsync", path: path, errno: errno) }
        } catch {
            unlink(path)
            throw error
        }
    }

    /// Flushes a folder's entries (a rename or a new file) to disk.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(operation: "open", path: directory, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError(operation: "fsync", path: directory, errno: errno) }
    }

    /// Creates a folder and its parents, mode 0750: the state folder is pushdeploy's and its group's only.
    public static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
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
