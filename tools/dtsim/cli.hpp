// The command line shared by every dtsim command (CLI11): one help layout, one error wording, exit
// code 2 for every usage error.
//
// A usage error prints two lines on stderr and exits 2:
//   error: <what is wrong>
//   Run 'dtsim <command> --help' for usage.
// Unknown options get the nearest valid option ("did you mean '--device'?"), unknown commands the
// nearest command. Values are checked after parsing by the helpers below, so that every message
// names the option and the value it got.
#pragma once
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

namespace dtsim::cli {

// Bad usage: what() is the message (without "error: "); main() adds the hint and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Makes `app` print `usage` (one or more "dtsim ..." lines) at the top of its --help, and use the
// common help layout; a command's `summary` is its line in `dtsim --help`'s list of commands. Call
// for the top-level app and each command.
void set_usage(CLI::App& app, const std::string& usage, const std::string& summary = "");

// After a successful parse: anything CLI11 left over in `app` (an unknown option, one argument
// too many) is a UsageError naming it, with the nearest option of `app` for a typo; so is an
// option or argument given an empty string.
void refuse_leftovers(const CLI::App& app);

// Turns a CLI11 parse error (a missing value, a malformed option) into our wording.
std::string parse_error_message(const CLI::ParseError& e);

// Value checks: a UsageError "<opt> <phrase> [lo, hi], got '<v>'" unless `v` is a whole number in range.
long to_int(const std::string& opt, const std::string& v, long lo, long hi,
            const std::string& phrase = "expects an integer in");
// A UsageError "<opt> needs a positive number of seconds, got '<v>'" unless v > 0 and finite.
double to_positive_seconds(const std::string& opt, const std::string& v);

}  // namespace dtsim::cli
