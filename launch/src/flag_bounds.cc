#include "flag_bounds.h"

#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "lockstep/base/nearest_name.h"

namespace lockstep::launch {

const Machine& ThisMachine() {
  static const Machine machine = [] {
    Machine m;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) m.cpus = std::max(1, CPU_COUNT(&set));
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page_size = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page_size > 0) {
      m.memory_bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
    }
    return m;
  }();
  return machine;
}

int64_t MaxThreads() { return 4 * int64_t{ThisMachine().cpus}; }
// A waiting chip blocks (transport/src/wait.h), so the bound is memory, not
// cores: 576 local chips of a small model measured 1.6 GB (about 3 MB a
// chip); 16 MiB a chip leaves room for the model's shards.
int64_t MaxLocalChips() {
  return std::clamp<int64_t>(static_cast<int64_t>(ThisMachine().memory_bytes >> 24), 16, 4096);
}
int64_t MaxKvCacheMiB() {
  return std::max<int64_t>(1, static_cast<int64_t>(ThisMachine().memory_bytes >> 20));
}

CLI::Validator WholeNumber(int64_t min, int64_t max, std::string why) {
  const std::string range = fmt::format("whole number from {} to {}{}", min, max,
                                        why.empty() ? "" : fmt::format(" ({})", why));
  return CLI::Validator(
      [min, max, range](std::string& text) -> std::string {
        int64_t value = 0;
        const char* end = text.data() + text.size();
        auto [stop, error] = std::from_chars(text.data(), end, value);
        if (text.empty() || error == std::errc::invalid_argument || stop != end) {
          return fmt::format("must be a {}, got '{}'", range, text);
        }
        if (error == std::errc::result_out_of_range || value < min || value > max) {
          return fmt::format("must be a {}, got {}", range, text);
        }
        return std::string();
      },
      fmt::format("INT in [{}, {}]", min, max));
}

std::string ParseErrorLine(const CLI::ParseError& error) {
  std::string text = error.what();
  std::replace(text.begin(), text.end(), '\n', ' ');
  // CLI11 wraps a conversion failure: say it plainly.
  if (dynamic_cast<const CLI::ConversionError*>(&error) != nullptr) {
    text += " (not a number of the right kind)";
  }
  return text;
}

namespace {

// Every long flag of `app`, those of its option groups included.
void AddFlagNames(const CLI::App& app, std::vector<std::string>* names) {
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) names->push_back("--" + name);
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (dynamic_cast<const CLI::Option_group*>(sub) != nullptr) AddFlagNames(*sub, names);
  }
}

std::vector<std::string> FlagNames(const CLI::App& app) {
  std::vector<std::string> names;
  AddFlagNames(app, &names);
  return names;
}

std::string UnknownFlag(const CLI::App& app, std::string_view flag, std::string_view where) {
  const std::vector<std::string> names = FlagNames(app);
  std::string_view name = flag.substr(0, flag.find('='));
  if (std::find(names.begin(), names.end(), name) != names.end()) return "";
  std::vector<std::string_view> views(names.begin(), names.end());
  const std::string suggestion = DidYouMean(name, views);
  return fmt::format("unknown flag '{}' for `{}`{}", name, where,
                     suggestion.empty() ? fmt::format("; `{} --help` lists the flags", where)
                                        : suggestion);
}

}  // namespace

std::string UnknownNames(const CLI::App& app, int argc, const char* const* argv) {
  if (argc < 2) return "";
  const std::string_view first = argv[1];
  const CLI::App* command = nullptr;
  if (first.rfind("--", 0) == 0) {
    // Flags of `lockstep` itself (--help, --version) come first.
    return UnknownFlag(app, first, "lockstep");
  }
  if (first.empty() || first[0] == '-') return "";
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (dynamic_cast<const CLI::Option_group*>(sub) != nullptr) continue;
    names.push_back(sub->get_name());
    if (sub->get_name() == first) command = sub;
  }
  if (command == nullptr) {
    std::vector<std::string_view> views(names.begin(), names.end());
    const std::string suggestion = DidYouMean(first, views);
    return fmt::format("unknown command '{}'{}", first,
                       suggestion.empty() ? "; `lockstep --help` lists the commands" : suggestion);
  }
  const std::string where = "lockstep " + command->get_name();
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;  // the rest is positional
    if (arg.rfind("--", 0) != 0) continue;
    if (std::string message = UnknownFlag(*command, arg, where); !message.empty()) return message;
  }
  return "";
}

}  // namespace lockstep::launch
