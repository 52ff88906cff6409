// The subcommands of `lockstep`. Each lives in its own <name>_command.cc and
// registers itself on the top-level CLI11 app through an Add*Command function
// listed here; main.cc calls them in order.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "lockstep/base/status.h"

namespace lockstep::launch {

struct Command {
  CLI::App* app = nullptr;   // the CLI11 subcommand
  std::function<int()> run;  // returns the process exit code
};

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // bad input, I/O, a failed peer
inline constexpr int kExitUsage = 2;  // bad command line
// `lockstep run`: the job ran, but some request lines could not (their error
// records are in the results file).
inline constexpr int kExitRequestErrors = 3;

// Prints "lockstep: error: <message>" as one line on stderr and returns
// kExitError.
int ReportError(const Status& status);
// The same for a bad command line (a flag's value, a missing or conflicting
// flag): returns kExitUsage.
int ReportUsage(const Status& status);

// Subcommand registrations, in help order.
Command AddSynthCommand(CLI::App& app);      // synth_command.cc
Command AddConvertCommand(CLI::App& app);    // convert_command.cc
Command AddQuantizeCommand(CLI::App& app);   // quantize_command.cc
Command AddInspectCommand(CLI::App& app);    // inspect_command.cc
Command AddVerifyCommand(CLI::App& app);     // verify_command.cc
Command AddTokenizeCommand(CLI::App& app);   // tokenize_command.cc
Command AddPlanCommand(CLI::App& app);       // plan_command.cc
Command AddCalibrateCommand(CLI::App& app);  // calibrate_command.cc
Command AddRunCommand(CLI::App& app);        // run_command.cc
Command AddDoctorCommand(CLI::App& app);     // doctor_command.cc

// "lockstep 0.1.0 (git abc123def456)".
std::string VersionString();

}  // namespace lockstep::launch
