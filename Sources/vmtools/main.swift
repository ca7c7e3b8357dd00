import VMToolsCommands

#if canImport(Glibc)
import Glibc
#endif

exit(VMTools.main(arguments: CommandLine.arguments))
