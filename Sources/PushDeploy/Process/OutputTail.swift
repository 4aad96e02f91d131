import Foundation
import Synchronization

/// Splits a command's output into lines as it arrives, writes them to the log and keeps the last few.
///
/// Shared by the task reading the pipe and the one that reports a timeout, hence the lock.
final class OutputTail: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var lines: [String] = []
    }

    /// A line longer than this is cut, so one runaway line cannot grow memory without bound.
    private static let maxLineBytes = 64 * 1024
    private let limit: Int
    private let log: (any DeploymentLog)?
    private let state = Mutex(State())

    init(limit: Int, log: (any DeploymentLog)?) {
        self.limit = max(limit, 0)
        self.log = log
    }

    /// Takes one chunk of output; every complete line goes to the log in a single write.
    func append(_ bytes: UnsafeRawBufferPointer) {
        let text: String? = state.withLock { state in
            var completed: [String] = []
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    completed.append(Self.decode(state.pending))
                    state.pending.removeAll(keepingCapacity: true)
                } else {
                    state.pending.append(byte)
                    if state.pending.count >= Self.maxLineBytes {
                        completed.append(Self.decode(state.pending))
                        state.pending.removeAll(keepingCapacity: true)
                    }
                }
            }
            keep(completed, in: &state)
            return completed.isEmpty ? nil : completed.map { $0 + "\n" }.joined()
        }
        if let text { log?.write(text) }
    }

    /// Flushes a last line that had no newline.
    func finish() {
        let text: String? = state.withLock { state in
            guard !state.pending.isEmpty else { return nil }
            let line = Self.decode(state.pending)
            state.pending.removeAll()
            keep([line], in: &state)
            return line + "\n"
        }
        if let text { log?.write(text) }
    }

    /// The last lines seen, oldest first.
    var lines: [String] {
        state.withLock { state in
            var lines = state.lines
            if !state.pending.isEmpty { lines.append(Self.decode(state.pending)) }
            return Array(lines.suffix(limit))
        }
    }

    private func keep(_ completed: [String], in state: inout State) {
        state.lines.append(contentsOf: completed.suffix(limit))
        if state.lines.count > limit { state.lines.removeFirst(state.lines.count - limit) }
    }

    private static func decode(_ bytes: [UInt8]) -> String {
        var line = String(decoding: bytes, as: UTF8.self)
        if line.hasSuffix("\r") { line.removeLast() }
        return line
    }
}
