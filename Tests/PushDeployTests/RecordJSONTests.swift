import Foundation
import Testing
@testable import PushDeploy

@Suite("Record JSON")
struct RecordJSONTests {
    /// Strings with what JSON must escape, slashes, non-ASCII and emoji.
    private static func text(_ generator: inout some RandomNumberGenerator) -> String {
        let pieces = ["a", "Fix the basket", "/", "\\", "\"", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{01}", "\u{1F}", "\u{7F}",
                      "é", "ß", "日本", "🚀", "\u{2028}", " ", "refs/heads/main", "{}", "[]", ":", ","]
        return (0 ..< Int.random(in: 0 ... 12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }

    @Test("written byte for byte as JSONEncoder.pushDeploy writes it")
    func matchesTheGenericEncoder() throws {
        var generator = SystemRandomNumberGenerator()
        func maybe<T>(_ value: @autoclosure () -> T) -> T? { Bool.random(using: &generator) ? value() : nil }
        let encoder = JSONEncoder.pushDeploy
        for round in 0 ..< 500 {
            let trigger = Trigger(source: TriggerSource.allCases.randomElement(using: &generator)!,
                                  deliveryId: maybe(Self.text(&generator)), ref: maybe(Self.text(&generator)),
                                  commit: maybe(Self.text(&generator)), repository: maybe(Self.text(&generator)),
                                  pusher: maybe(Self.text(&generator)), message: maybe(Self.text(&generator)))
            var deployment = Deployment(id: Int.random(in: 1 ... 1_000_000, using: &generator), app: Self.text(&generator),
                                        kind: Bool.random(using: &generator) ? .deploy : .rollback, trigger: trigger,
                                        strategy: Self.text(&generator),
                                        createdAt: Date(timeIntervalSince1970: Double.random(in: 0 ... 4e9, using: &generator)))
            var date = deployment.createdAt
            for status in DeploymentStatus.allCases.shuffled(using: &generator).prefix(Int.random(in: 0 ... 5, using: &generator)) {
                date += Double.random(in: 0 ... 100, using: &generator)
                deployment.enter(status, at: date)
            }
            deployment.commit = maybe(Self.text(&generator))
            deployment.version = maybe(Self.text(&generator))
            deployment.error = maybe(Self.text(&generator))
            deployment.supersededBy = maybe(Int.random(in: -5 ... 1_000_000, using: &generator))
            deployment.rollbackTo = maybe(Self.text(&generator))
            deployment.previousVersion = maybe(Self.text(&generator))
            let expected = try encoder.encode(deployment)
            let written = RecordJSON.encode(deployment)
            #expect(written == expected, "round \(round):\n\(String(decoding: written, as: UTF8.self))\n---\n\(String(decoding: expected, as: UTF8.self))")
            if written != expected { return }
            #expect(try JSONDecoder.pushDeploy.decode(Deployment.self, from: written).id == deployment.id)
        }
    }
}
