// docs/api/openapi.yaml is generated from the operation table: every
// operation is in it, under its path and method.
#include "wire/openapi.hpp"

#include <gtest/gtest.h>

#include <string>

#include "driver/ops/all.hpp"
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

}  // namespace
}  // namespace vireo::wire
