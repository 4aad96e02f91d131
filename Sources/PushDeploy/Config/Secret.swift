import Foundation

/// A secret read from a file or the environment. It prints as `<secret>` so it never reaches a log or an answer.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret's bytes, trailing newline removed.
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public init(_ text: String) { self.bytes = Array(text.utf8) }

    /// The secret as text, for the few places that must send it (a git credential).
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public var description: String { "<secret>" }
    public var debugDescription: String { "<secret>" }

    /// Compares with `other` in time that depends only on the lengths, never on where they differ.
    public func constantTimeEquals<C: Collection>(_ other: C) -> Bool where C.Element == UInt8 {
        ConstantTime.equals(bytes, other)
    }
}

/// Comparisons whose time does not reveal where two values differ.
public enum ConstantTime {
    /// True when `a` and `b` hold the same bytes; the time depends only on their lengths.
    public static func equals<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        if a.count != b.count { difference |= 1 }
        var left = a.makeIterator()
        // Walk the full length of b whatever a holds, so the loop length never depends on content.
        for right in b {
            let l = left.next() ?? 0
            difference |= l ^ right
        }
        return difference == 0
    }
}
