import CLISupport

CommandMain.run(LeakCollectCommand.self, toolName: "leakcollect")
