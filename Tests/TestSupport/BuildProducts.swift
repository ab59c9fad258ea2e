import Foundation

/// Where this build put its products (libleakshim.so, leakcollect, leakreport): the directory that
/// holds the running test bundle.
public enum BuildProducts {
    public static let directory: URL = {
        // The xctest bundle lives in the build directory, next to every product of the same build.
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("libleakshim.so").path)
                || url.pathExtension == "xctest"
            {
                let dir = url.pathExtension == "xctest" ? url.deletingLastPathComponent() : url
                return dir
            }
            url.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug")
    }()

    /// A product of this build, or a test failure message if it was not built.
    public static func path(_ name: String) throws -> String {
        let p = directory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: p) || FileManager.default.fileExists(atPath: p) else {
            throw TestSupportError("\(name) not found in \(directory.path): run `swift build` before `swift test` (tools/test.sh does)")
        }
        return p
    }

    public static var shim: String { get throws { try path("libleakshim.so") } }
    public static var leakcollect: String { get throws { try path("leakcollect") } }
    public static var leakreport: String { get throws { try path("leakreport") } }
}

/// A failure in test set-up, with the reason in its message.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
