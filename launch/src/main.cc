// lockstep: the command-line entry point. Subcommands register themselves
// (command.h); main parses the command line and runs the chosen one.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "command.h"
#include "flag_bounds.h"
#include "launcher.h"
#include "lockstep/base/log.h"

int main(int argc, char** argv) {
  using namespace lockstep::launch;
  lockstep::InitLogging();

  CLI::App app{"lockstep: deterministic distributed inference for Llama-family models.\n"
               "The same request gives the same bits on 1 rank or 64.",
               "lockstep"};
  app.set_version_flag("--version", VersionString(), "Print the version and git revision");
  app.require_subcommand(1);
  app.fallthrough(false);

  std::vector<Command> commands;
  // Subcommand registrations (one per *_command.cc) go here, in help order.
  commands.push_back(AddSynthCommand(app));
  commands.push_back(AddConvertCommand(app));
  commands.push_back(AddQuantizeCommand(app));
  commands.push_back(AddInspectCommand(app));
  commands.push_back(AddVerifyCommand(app));
  commands.push_back(AddTokenizeCommand(app));
  commands.push_back(AddPlanCommand(app));
  commands.push_back(AddCalibrateCommand(app));
  commands.push_back(AddRunCommand(app));
  commands.push_back(AddDoctorCommand(app));

  // No subcommand at all: what a new user types first. The help, not an
  // error about a missing subcommand.
  if (argc == 1) {
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  // A bad command line is one line on stderr (from rank 0 only under
  // mpirun) and exit 2; a misspelt command or flag is named with the
  // nearest valid one.
  auto usage_error = [](const std::string& message) {
    if (LauncherWorldRank() == 0) {
      std::fputs(fmt::format("lockstep: error: {}\n", message).c_str(), stderr);
    }
    return kExitUsage;
  };
  if (std::string unknown = UnknownNames(app, argc, argv); !unknown.empty()) {
    return usage_error(unknown);
  }
  // --help and --version under mpirun: printed once, by rank 0.
  auto print_once = [&app](const CLI::ParseError& e) {
    return LauncherWorldRank() == 0 ? app.exit(e) : e.get_exit_code();
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return print_once(e);
  } catch (const CLI::CallForAllHelp& e) {
    return print_once(e);
  } catch (const CLI::CallForVersion& e) {
    return print_once(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(ParseErrorLine(e));
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return kExitUsage;
}
