import CLISupport

CommandMain.run(LeakReportCommand.self, toolName: "leakreport")
