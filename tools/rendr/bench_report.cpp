#include "bench_report.hpp"

#include <iostream>
#include <string>

#include "console.hpp"

namespace rendr::cli {

void print_result(const Args& args, std::string_view title, const JsonObject& result) {
  if (args.has("json"))
    std::cout << result.str() << std::endl;
  else
    std::cout << title << "\n" << result.human() << std::flush;
}

int report_setup_failure(const Args& args, std::string_view bench, std::string_view reason) {
  log_line("rendr bench " + std::string(bench) + ": " + std::string(reason));
  if (args.has("json"))
    std::cout << JsonObject().add("bench", bench).add("error", reason).str() << std::endl;
  return 1;
}

}  // namespace rendr::cli
