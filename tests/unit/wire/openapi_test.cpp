// docs/api/openapi.yaml is generated from the operation table: every
// operation is in it, under its path and method, and the committed file is
// what the generator writes today.
#include "wire/openapi.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "driver/ops/all.hpp"
#include "support/support.hpp"
#include "wire/wire.hpp"

namespace vireo::wire {
namespace {

namespace ops = driver::ops;

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

TEST(OpenApi, EveryOperationIsDocumentedUnderItsPathAndMethod) {
    const std::string yaml = openapi_yaml();
    for (const auto* info : ops::kInfos) {
        const std::string path = fmt::format("\n  {}:\n", info->path.substr(kApiPrefix.size()));
        const auto at = yaml.find(path);
        ASSERT_NE(at, std::string::npos) << info->name << ": no path " << info->path;
        const std::string op = fmt::format("\n    {}:\n      operationId: {}\n", lower(ops::method_name(info->method)),
                                           info->name);
        const auto op_at = yaml.find(op);
        ASSERT_NE(op_at, std::string::npos) << info->name;
        // Under that path: no other path in between.
        EXPECT_EQ(yaml.substr(at + 1, op_at - at).find("\n  /"), std::string::npos) << info->name;
    }
}

TEST(OpenApi, ErrorCodesAreVireosOwn) {
    const std::string yaml = openapi_yaml();
    for (int c = 0; c <= static_cast<int>(ErrorCode::OperationFailed); ++c)
        EXPECT_NE(yaml.find(std::string(to_string(static_cast<ErrorCode>(c)))), std::string::npos) << c;
}

TEST(OpenApi, TheCommittedFileIsTheGeneratedOne) {
    const auto path = test::source_dir() / "docs/api/openapi.yaml";
    std::ifstream in(path);
    ASSERT_TRUE(in) << "cannot read " << path;
    std::stringstream committed;
    committed << in.rdbuf();
    const std::string generated = openapi_yaml();
    if (committed.str() == generated) return;
    // Where they start to differ, to see what changed.
    const std::string& c = committed.str();
    std::size_t at = 0;
    while (at < c.size() && at < generated.size() && c[at] == generated[at]) ++at;
    const std::size_t line_start = c.rfind('\n', at) == std::string::npos ? 0 : c.rfind('\n', at) + 1;
    ADD_FAILURE() << "docs/api/openapi.yaml is not what the operation table generates; regenerate it with\n"
                  << "    build/bin/vireod --print-openapi > docs/api/openapi.yaml\n"
                  << "first difference at line " << std::count(c.begin(), c.begin() + static_cast<long>(line_start), '\n') + 1
                  << ":\n  committed: " << c.substr(line_start, c.find('\n', at) - line_start)
                  << "\n  generated: " << generated.substr(line_start, generated.find('\n', at) - line_start);
}

}  // namespace
}  // namespace vireo::wire
