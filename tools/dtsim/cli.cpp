#include "tools/dtsim/cli.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>

#include "common/json_reader.hpp"

namespace dtsim::cli {
namespace {

// One layout for every --help: the usage lines, the description, the arguments and options in
// aligned columns, the commands (top level), the footer.
class Help : public CLI::Formatter {
 public:
  std::map<const CLI::App*, std::string> usage, summary;

  Help() { column_width(26); }

  std::string make_usage(const CLI::App* app, std::string name) const override {
    auto it = usage.find(app);
    if (it == usage.end()) return CLI::Formatter::make_usage(app, name);
    std::string out;
    std::istringstream lines(it->second);
    bool first = true;
    for (std::string l; std::getline(lines, l); first = false) out += (first ? "Usage: " : "       ") + l + "\n";
    return out;
  }

  // A command in the top-level list: its one-line summary (its --help has the whole description).
  std::string make_subcommand(const CLI::App* sub) const override {
    auto it = summary.find(sub);
    if (it == summary.end()) return CLI::Formatter::make_subcommand(sub);
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_name(), it->second, column_width_);
    return out.str();
  }

  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    std::string out = make_usage(app, name) + "\n" + make_description(app);
    out += make_positionals(app) + make_groups(app, mode) + make_subcommands(app, mode);
    if (const std::string f = make_footer(app); !f.empty()) out += "\n" + f;
    // CLI11 separates its sections by one to three newlines: one blank line between sections.
    std::string tidy;
    for (char c : out)
      if (!(c == '\n' && tidy.size() >= 2 && tidy[tidy.size() - 1] == '\n' && tidy[tidy.size() - 2] == '\n')) tidy += c;
    return tidy;
  }
};

std::shared_ptr<Help> help() {
  static auto h = std::make_shared<Help>();
  return h;
}

// Every long and short name of `app`'s options, with their dashes.
std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* o : app.get_options()) {
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
  }
  return names;
}

}  // namespace

void set_usage(CLI::App& app, const std::string& usage, const std::string& summary) {
  help()->usage[&app] = usage;
  if (!summary.empty()) help()->summary[&app] = summary;
  app.formatter(help());
  if (app.get_parent()) app.group("Commands");
}

void refuse_leftovers(const CLI::App& app) {
  // An option or argument given as '' (`--out ''`, a shell variable that was empty): no command
  // has a use for an empty value, and taking it as "not given" would silently use the default.
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_type_size() == 0 || opt->count() == 0) continue;  // a flag, or not given
    for (const std::string& v : opt->results())
      if (v.empty()) throw UsageError(opt->get_name() + " needs a value, got an empty string");
  }
  // "--" ends the options (`dtsim algorithms -- ssgd`): CLI11 keeps the marker among the extras
  // and gives what follows it to the positionals; what is left after it is an argument.
  std::vector<std::string> rest = app.remaining();
  bool after_marker = false;
  while (!rest.empty() && rest.front() == "--") {
    rest.erase(rest.begin());
    after_marker = true;
  }
  if (rest.empty()) return;
  const std::string& s = rest.front();
  if (!after_marker && s.size() > 1 && s[0] == '-') {
    const std::string name = s.substr(0, s.find('='));
    std::string msg = "unknown option '" + name + "'";
    if (auto near = nearest_key(name, option_names(app))) msg += " (did you mean '" + *near + "'?)";
    throw UsageError(msg);
  }
  throw UsageError("unexpected argument '" + s + "'");
}

std::string parse_error_message(const CLI::ParseError& e) {
  const std::string what = e.what();
  // "--jobs: 1 required N missing": an option given without its value.
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e)) {
    const auto colon = what.find(':');
    if (colon != std::string::npos && what.find(" required ") != std::string::npos && what.find(" missing") != std::string::npos)
      return what.substr(0, colon) + " needs a value";
  }
  return what;
}

long to_int(const std::string& opt, const std::string& v, long lo, long hi, const std::string& phrase) {
  errno = 0;
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || errno == ERANGE || x < lo || x > hi)
    throw UsageError(opt + " " + phrase + " [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
  return x;
}

double to_positive_seconds(const std::string& opt, const std::string& v) {
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size() && d > 0 && std::isfinite(d)) return d;
  } catch (const std::exception&) {
  }
  throw UsageError(opt + " needs a positive number of seconds, got '" + v + "'");
}

}  // namespace dtsim::cli
