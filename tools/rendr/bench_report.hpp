#pragma once
// How every benchmark ends: with --json the result is the last line of stdout as one JSON
// object; without it, a readable "key: value" list.
#include <string_view>

#include "args.hpp"
#include "json.hpp"

namespace rendr::cli {

void print_result(const Args& args, std::string_view title, const JsonObject& result);

// For a benchmark that could not run at all (e.g. its flow did not open): logs the reason and,
// with --json, prints {"bench":...,"error":...}. Returns exit status 1.
int report_setup_failure(const Args& args, std::string_view bench, std::string_view reason);

}  // namespace rendr::cli
