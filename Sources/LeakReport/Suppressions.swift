import Foundation
import KernelSession
import SessionStore
import Vocabulary

/// Which outstanding allocations a report leaves out of its totals, as LeakSanitizer and valgrind do:
/// built-in rules for memory the C and C++ runtimes keep on purpose until exit, and user patterns in
/// LeakSanitizer's `leak:PATTERN` form. Suppressed allocations are still counted, on their own line.
public struct Suppressions: Sendable {
    /// A rule and the name reports show for it.
    public struct Rule: Sendable {
        public let name: String
        let matches: @Sendable ([FrameRow]) -> Bool
    }

    public let rules: [Rule]

    public init(builtins: Bool = true, patterns: [String] = []) {
        var rules = builtins ? Self.builtin : []
        for p in patterns {
            rules.append(Rule(name: "leak:\(p)") { frames in
                frames.contains { f in
                    [f.function, f.file, f.module].contains { $0?.contains(p) ?? false }
                }
            })
        }
        self.rules = rules
    }

    /// The name of the first rule that matches a stack, if any.
    public func match(_ stack: StackRow) -> String? {
        guard stack.origin == .user, !stack.frames.isEmpty else { return nil }
        return rules.first { $0.matches(stack.frames) }?.name
    }

    private static func module(_ f: FrameRow) -> String { f.module.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "" }

    private static let runtimeLibraries = ["libc.so", "libstdc++.so", "libgcc_s.so", "libm.so", "ld-linux", "ld.so"]

    /// Memory glibc and libstdc++ allocate once and keep on purpose (valgrind calls it "still reachable").
    public static let builtin: [Rule] = [
        // The dynamic loader's own bookkeeping: thread TLS blocks and their DTVs (kept with glibc's
        // cached thread stacks), link maps and dlopen's lookup tables.
        Rule(name: "dynamic loader (TLS, link maps)") { frames in
            module(frames[0]).hasPrefix("ld-linux") || module(frames[0]).hasPrefix("ld.so")
        },
        // A FILE's buffer, allocated at its first use and released only by fclose.
        Rule(name: "stdio buffers") { frames in frames[0].function == "_IO_file_doallocate" },
        // Run-once state of the runtime libraries, allocated by their initializers before main (the
        // libstdc++ exception emergency pool): no frame outside the runtime libraries at all.
        Rule(name: "runtime library initializers") { frames in
            frames.contains { $0.function == "_dl_init" }
                && frames.allSatisfy { f in runtimeLibraries.contains { module(f).hasPrefix($0) } }
        },
    ]

    /// Reads a suppressions file: one `leak:PATTERN` per line, `#` comments and blank lines ignored.
    public static func patterns(fromFile path: String) throws(ValueParsers.Invalid) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValueParsers.Invalid(description: "cannot read suppressions file \(path)")
        }
        var out: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard line.hasPrefix("leak:"), line.count > 5 else {
                throw ValueParsers.Invalid(description: "\(path):\(i + 1): expected leak:PATTERN, found '\(line)'")
            }
            out.append(String(line.dropFirst(5)))
        }
        return out
    }
}
