import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import PushDeploy
@testable import PushDeployServer

/// A small deterministic generator (SplitMix64): a failing case can be replayed from the seed in the test's name.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutated payloads and headers at every webhook route: never a 5xx, never a crash, nothing queued for what is refused.
@Suite("Webhook fuzzing", .serialized)
struct WebhookFuzzTests {
    enum Sender: String, CaseIterable, Sendable {
        case github, gitlab, travis
    }

    /// A body mutated the ways a fuzzer does: bytes flipped, inserted, removed, cut, repeated, invalid UTF-8, and
    /// JSON values swapped for other types.
    static func mutate(_ body: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = body
        let interesting: [[UInt8]] = [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0], Array("\"".utf8), Array("\\".utf8), Array("{".utf8),
                                      Array("}".utf8), Array("[".utf8), Array("null".utf8), Array("1e999".utf8), Array("-0".utf8),
                                      Array("\"\\ud800\"".utf8), Array(String(repeating: "[", count: 600).utf8)]
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            guard !bytes.isEmpty else { bytes = interesting.randomElement(using: &random)!; continue }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<8, using: &random) {
            case 0: bytes[at] ^= UInt8.random(in: 1...255, using: &random)
            case 1: bytes.insert(contentsOf: interesting.randomElement(using: &random)!, at: at)
            case 2: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &random)))
            case 3: bytes.removeSubrange(at...)
            case 4: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 64)], at: at)
            case 5:
                // A value of another type where a string was: "ref": "…" → "ref": 7
                let text = String(decoding: bytes, as: UTF8.self)
                let keys = ["\"ref\"", "\"after\"", "\"repository\"", "\"commits\"", "\"pusher\"", "\"deleted\"", "\"status\"",
                            "\"branch\"", "\"project\"", "\"object_kind\""]
                if let key = keys.randomElement(using: &random), let range = text.range(of: key + ":") {
                    let replacement = ["7", "null", "[]", "{}", "true", "\"\"", "\"refs/tags/x\"", "\"0000000000000000000000000000000000000000\""]
                        .randomElement(using: &random)!
                    bytes = Array((text[..<range.upperBound] + replacement + "," + text[range.upperBound...]).utf8)
                }
            case 6: bytes.append(contentsOf: Array(String(repeating: " ", count: Int.random(in: 1...40, using: &random)).utf8))
            default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
            }
        }
        return bytes
    }

    /// A request for `sender` around `body`, correctly signed unless `sign` is false.
    static func request(_ sender: Sender, body: [UInt8], fixture: RouterFixture, sign: Bool = true) throws -> (path: String, body: [UInt8], headers: [String: String]) {
        switch sender {
        case .github:
            var headers = githubHeaders(body)
            if !sign { headers["X-Hub-Signature-256"] = RouterFixture.sign(body + [0x20]) }
            return ("/hooks/github", body, headers)
        case .gitlab:
            return ("/hooks/gitlab", body, ["Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
                                            "X-Gitlab-Event-UUID": UUID().uuidString,
                                            "X-Gitlab-Token": sign ? RouterFixture.gitlabToken : "nope"])
        case .travis:
            // Travis signs the form value: mutate the payload, encode it, sign what is sent.
            let payload = String(decoding: body, as: UTF8.self)
            let signature = try fixture.travisSignature(sign ? payload : payload + " ")
            return ("/hooks/travis", Payloads.form(["payload": payload]),
                    ["Content-Type": "application/x-www-form-urlencoded", "Signature": signature])
        }
    }

    static func base(_ sender: Sender) -> [UInt8] {
        switch sender {
        case .github: Payloads.githubPush()
        case .gitlab: Payloads.gitlabPush()
        case .travis: Array(Payloads.travisBuild().utf8)
        }
    }

    @Test("1,000 mutated signed bodies per sender: only 200, 202, 400, 401 or 413; a refused one queues nothing", arguments: Sender.allCases)
    func mutatedBodies(sender: Sender) async throws {
        let fixture = try await RouterFixture(history: MemoryDeploymentHistory())
        try await fixture.test { client in
            var random = SeededGenerator(seed: 0x5eed_0000 + UInt64(sender.rawValue.utf8.count))
            var answers: [Int: Int] = [:]
            for round in 0..<1000 {
                let body = Self.mutate(Self.base(sender), &random)
                let (path, sent, headers) = try Self.request(sender, body: body, fixture: fixture, sign: round % 10 != 9)
                let before = await fixture.service.history.summaries(app: "shop").count
                let (status, json) = try await client.post(path, sent, headers)
                answers[Int(status.code), default: 0] += 1
                #expect([200, 202, 400, 401, 413].contains(status.code), "round \(round): \(status) \(json) for \(String(decoding: body.prefix(300), as: UTF8.self))")
                let after = await fixture.service.history.summaries(app: "shop").count
                if status != .accepted {
                    #expect(after == before, "round \(round): \(status) yet a deployment was recorded")
                }
                if round % 10 == 9 { #expect(status == .unauthorized, "round \(round): a wrongly signed body got \(status)") }
            }
            #expect(answers[400, default: 0] > 100, "the mutations should mostly break the payload: \(answers)")
        }
    }

    @Test("200 mutated header sets per sender: never a 5xx; without the right signature nothing is queued", arguments: Sender.allCases)
    func mutatedHeaders(sender: Sender) async throws {
        let fixture = try await RouterFixture(history: MemoryDeploymentHistory())
        try await fixture.test { client in
            var random = SeededGenerator(seed: 0x4ead_0000 + UInt64(sender.rawValue.utf8.count))
            let body = Self.base(sender)
            let names = ["X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256", "X-Gitea-Signature", "X-Gitea-Event",
                         "X-Gitlab-Token", "X-Gitlab-Event", "X-Gitlab-Event-UUID", "Signature", "Content-Type", "Content-Length-X",
                         "Travis-Repo-Slug"]
            let values = ["", " ", "push", "ping", "Push Hook", "System Hook", "sha256=", "sha256=zz", "sha256=" + String(repeating: "0", count: 64),
                          String(repeating: "A", count: 4000), "application/x-www-form-urlencoded", "application/json; charset=utf-8",
                          "../../etc/passwd", "$(reboot)", "évènement", "acme/shop"]
            for round in 0..<200 {
                let (path, sent, signed) = try Self.request(sender, body: body, fixture: fixture)
                var headers = signed
                let signatureNames = switch sender {
                case .github: ["X-Hub-Signature-256", "X-Gitea-Signature"]
                case .gitlab: ["X-Gitlab-Token"]
                case .travis: ["Signature"]
                }
                let signatureBefore = headers.filter { signatureNames.contains($0.key) }
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let name = names.randomElement(using: &random)!
                    if Bool.random(using: &random) { headers[name] = nil } else { headers[name] = values.randomElement(using: &random)! }
                }
                let signatureKept = headers.filter { signatureNames.contains($0.key) } == signatureBefore
                let before = await fixture.service.history.summaries(app: "shop").count
                let (status, json) = try await client.post(path, sent, headers)
                #expect(status.code < 500, "round \(round): \(status) \(json) with \(headers)")
                let after = await fixture.service.history.summaries(app: "shop").count
                if !signatureKept, headers["X-Hub-Signature-256"] == nil || headers["X-Hub-Signature-256"] != signatureBefore["X-Hub-Signature-256"] {
                    // The sender's signature header removed or garbled: refused, nothing recorded.
                    #expect(status == .unauthorized && after == before, "round \(round): \(status) with \(headers)")
                }
                if status != .accepted { #expect(after == before, "round \(round): \(status) yet a deployment was recorded") }
            }
        }
    }
}
