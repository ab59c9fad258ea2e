import ArgumentParser
import CLISupport
import Foundation
import LeakReport
import ReportFormats
import SessionStore
import Vocabulary

/// What every profile-based report (growth, peak, churn, diff, pprof, folded, flamegraph) takes to
/// choose what it reads: the kinds, and the suppressions `top` applies.
struct ProfileOptions: ParsableArguments {
    @Option(help: "Which kind of memory: heap, mmap, slab, page, percpu, kernel or all.") var kind: KindChoice = .all
    @Option(help: "A file of leak:PATTERN lines (LeakSanitizer's form): stacks with a matching function, file or module are left out.")
    var suppressions: String?
    @Flag(name: .customLong("no-builtin-suppressions"), help: "Also count what the C/C++ runtime keeps on purpose (loader TLS, stdio buffers, ...).")
    var noBuiltinSuppressions = false

    func request(series: Bool = false, frames: Bool = true) throws(ValueParsers.Invalid) -> ProfileRequest {
        let patterns = try suppressions.map(Suppressions.patterns(fromFile:)) ?? []
        return ProfileRequest(
            kinds: kind.kinds, suppressions: Suppressions(builtins: !noBuiltinSuppressions, patterns: patterns), series: series, frames: frames)
    }

    func load(_ path: String, series: Bool = false, frames: Bool = true) throws -> SessionProfile {
        try SessionProfile.load(try SessionReader(path: path), try request(series: series, frames: frames))
    }
}

/// Output formats of the analyses.
enum AnalysisFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Runs a report body, turning every failure the libraries describe into one line at the CLI edge.
func reporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as SessionError {
        throw UserError(e.description)
    } catch let e as ValueParsers.Invalid {
        throw UserError(e.description)
    } catch let e as AnalysisError {
        throw UserError(e.description)
    } catch let e as FormatError {
        throw UserError(e.description)
    }
}

/// Writes a report to a file (or stdout for "-"), saying in one line why it could not.
func write(_ data: Data, to path: String) throws {
    if path == "-" {
        FileHandle.standardOutput.write(data)
        return
    }
    do {
        try data.write(to: URL(fileURLWithPath: path))
    } catch {
        throw UserError("cannot write \(path): \((error as NSError).localizedDescription)")
    }
}
