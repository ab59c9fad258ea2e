import ArgumentParser
import Foundation

/// A failure the CLI reports as one line on stderr, exiting with `code`.
public struct UserError: Error, CustomStringConvertible {
    public let description: String
    public let code: Int32
    public init(_ description: String, code: Int32 = 1) {
        self.description = description
        self.code = code
    }
}

/// Runs a command the way both CLIs want errors: help and version print in full; every failure, from
/// a bad flag to a corrupt session, prints as `tool: message` on one line with a non-zero exit.
public enum CommandMain {
    public static func run<Root: ParsableCommand>(_ root: Root.Type, toolName: String, arguments: [String]? = nil) -> Never {
        do {
            var command = try root.parseAsRoot(arguments)
            try command.run()
            exit(0)
        } catch let code as ExitCode {
            // A status handed on (leakcollect exits the way its program did): nothing to print.
            exit(code.rawValue)
        } catch {
            let code = root.exitCode(for: error)
            if code == .success {
                print(root.fullMessage(for: error))
                exit(0)
            }
            let message = (error as? UserError)?.description ?? root.message(for: error)
            let line = message.split(whereSeparator: \.isNewline).first.map(String.init) ?? "failed"
            FileHandle.standardError.write(Data("\(toolName): \(line)\n".utf8))
            exit((error as? UserError)?.code ?? (code.rawValue == 0 ? 1 : code.rawValue))
        }
    }
}
