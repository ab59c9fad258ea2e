import ArgumentParser
import CLISupport
import LeakReport

// Kernel branch only: a stand-in root command so `leakcollect --kernel` runs and can be tested. The
// real root command (launch and attach modes) replaces this file; it needs `@OptionGroup var
// kernelOptions: KernelModeOptions` and, when `kernelOptions.kernel`, a call to `KernelMode.run`.
struct LeakCollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leakcollect", abstract: "Collect a leak session.")

    @Option(name: [.customShort("o"), .long], help: "Session file to write.") var output: String = "leak.leaks"
    @Option(help: "Stop after this long (e.g. 60, 30s, 5m).") var duration: String?
    @Option(help: "Only this process.") var pid: Int32?
    @Option(help: "Flush interval in milliseconds.") var interval: Int?
    @OptionGroup var kernelOptions: KernelModeOptions

    func run() throws {
        guard kernelOptions.kernel else { throw UserError("only --kernel is wired in this build") }
        let durationNs: UInt64?
        do {
            durationNs = try duration.map(ValueParsers.duration)
        } catch {
            throw UserError(error.description)
        }
        try KernelMode.run(kernelOptions, output: output, durationNs: durationNs, pid: pid, intervalMs: interval)
    }
}

CommandMain.run(LeakCollectCommand.self, toolName: "leakcollect")
