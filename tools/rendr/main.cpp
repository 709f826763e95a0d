// `rendr`: the command line tool. Dispatches to a subcommand; see `rendr --help`.
#include <csignal>
#include <exception>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"

namespace {

using rendr::cli::Command;

std::vector<Command> all_commands() {
  return {rendr::cli::listen_command(),         rendr::cli::dial_command(),
          rendr::cli::forward_command(),        rendr::cli::demo_command(),
          rendr::cli::bench_stream_command(),   rendr::cli::bench_echo_command(),
          rendr::cli::bench_failover_command(), rendr::cli::bench_flows_command(),
          rendr::cli::bench_packet_command()};
}

std::string overview(const std::vector<Command>& commands) {
  std::string out =
      "usage: rendr <command> [options]\n\n"
      "rendr keeps one byte-stream connection alive across several network paths and moves it\n"
      "between them without losing, duplicating or reordering a byte.\n\ncommands:\n";
  for (const Command& c : commands) {
    out += "  " + c.spec.name + std::string(16 - c.spec.name.size(), ' ') + c.spec.brief + "\n";
  }
  return out + "\nRun 'rendr <command> --help' for a command's options.\n";
}

// Finds the command named by the leading words of argv ("bench stream" takes two).
const Command* find_command(const std::vector<Command>& commands, std::span<char* const> argv,
                            std::size_t& words) {
  for (const Command& c : commands) {
    const bool two_words = c.spec.name.find(' ') != std::string::npos;
    words = two_words ? 2 : 1;
    if (argv.size() < words) continue;
    const std::string name =
        two_words ? std::string(argv[0]) + " " + argv[1] : std::string(argv[0]);
    if (name == c.spec.name) return &c;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout (`rendr dial | head`) must be an EPIPE error we report, not a silent kill.
  std::signal(SIGPIPE, SIG_IGN);
  const std::vector<Command> commands = all_commands();
  const std::span<char* const> args(argv + 1, argc - 1);
  if (args.empty() || std::string_view(args[0]) == "--help" || std::string_view(args[0]) == "-h" ||
      std::string_view(args[0]) == "help") {
    std::cout << overview(commands);
    return args.empty() ? rendr::cli::kUsageExit : 0;
  }

  std::size_t words = 0;
  const Command* command = find_command(commands, args, words);
  if (command == nullptr) {
    std::string given = args[0];
    if (given == "bench" && args.size() > 1) given += std::string(" ") + args[1];
    std::cerr << "rendr: unknown command '" << given << "'\n\n" << overview(commands);
    return rendr::cli::kUsageExit;
  }
  try {
    const auto parsed = rendr::cli::Args::parse(command->spec, args.subspan(words));
    if (parsed.help_requested()) {
      std::cout << rendr::cli::usage_text(command->spec);
      return 0;
    }
    return command->run(parsed);
  } catch (const rendr::cli::UsageError& e) {
    std::cerr << "rendr: " << e.what() << "\nusage: rendr " << command->spec.name << " "
              << command->spec.synopsis << "\n(see 'rendr " << command->spec.name << " --help')\n";
    return rendr::cli::kUsageExit;
  } catch (const std::exception& e) {
    std::cerr << "rendr " << command->spec.name << ": " << e.what() << "\n";
    return 1;
  }
}
