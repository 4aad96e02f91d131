import Foundation
import Testing
@testable import PushDeploy

@Suite("Record dates")
struct ISO8601MillisecondsTests {
    @Test("the fast formatter writes what Foundation's ISO 8601 style writes")
    func matchesFoundation() {
        let style = Date.ISO8601FormatStyle.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)
        var generator = SystemRandomNumberGenerator()
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_767_268_799.999),
                     Date(timeIntervalSince1970: 951_782_400.5), Date(timeIntervalSince1970: 4_102_444_800.001)]
        for _ in 0 ..< 2000 {
            dates.append(Date(timeIntervalSince1970: Double.random(in: 0 ... 4_102_444_800, using: &generator)))
        }
        for date in dates {
            #expect(ISO8601Milliseconds.format(date) == date.formatted(style), "\(date.timeIntervalSince1970)")
        }
    }
}
