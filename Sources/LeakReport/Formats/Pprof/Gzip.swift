import CZlib
import Foundation

/// gzip framing through zlib (pprof files are gzip'd protobuf on disk).
public enum Gzip {
    public static func compress(_ input: Data, level: Int32 = 6) throws(FormatError) -> Data {
        var stream = z_stream()
        // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of a zlib one.
        var status = deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw .compression(status: status, message: message(stream)) }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = Data(count: bound)
        let produced: Int = input.withUnsafeBytes { (src: UnsafeRawBufferPointer) -> Int in
            output.withUnsafeMutableBytes { (dst: UnsafeMutableRawBufferPointer) -> Int in
                // zlib's API takes a non-const input pointer but never writes through it.
                stream.next_in = UnsafeMutablePointer(mutating: src.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(src.count)
                stream.next_out = dst.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(dst.count)
                // deflateBound is large enough for a single Z_FINISH call.
                status = deflate(&stream, Z_FINISH)
                return dst.count - Int(stream.avail_out)
            }
        }
        guard status == Z_STREAM_END else { throw .compression(status: status, message: message(stream)) }
        output.count = produced
        return output
    }

    private static func message(_ s: z_stream) -> String {
        s.msg.map { String(cString: $0) } ?? "no message"
    }
}
