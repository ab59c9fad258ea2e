import Foundation

/// How every report of this module prints JSON: pretty, keys sorted, slashes unescaped (paths), the
/// same settings as `leakreport top --format json`.
public enum FormatsJSON {
    public static func encode<T: Encodable>(_ value: T) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? enc.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// One frame in every JSON document of this module; the field names are spelled here only.
public struct FrameJSON: Codable, Equatable {
    public var address: String
    public var function: String?
    public var offset: UInt64?
    public var module: String?
    public var file: String?
    public var line: Int?
    public var inlined: Bool?

    public init(_ f: ProfileFrame, in p: Profile) {
        address = "0x" + String(f.address, radix: 16)
        function = f.function
        offset = f.offset
        module = p.module(of: f)?.path
        file = f.file
        line = f.line
        inlined = f.inlined ? true : nil
    }

    public static func frames(_ frames: [ProfileFrame], in p: Profile) -> [FrameJSON] { frames.map { FrameJSON($0, in: p) } }
}

/// A point of a series in JSON: `{"time_ns", "bytes"}`.
public struct SeriesPointJSON: Codable, Equatable {
    public var timeNs: UInt64
    public var bytes: UInt64
    enum CodingKeys: String, CodingKey {
        case bytes
        case timeNs = "time_ns"
    }

    public init(_ p: SeriesPoint) {
        timeNs = p.timeNs
        bytes = p.bytes
    }
}
