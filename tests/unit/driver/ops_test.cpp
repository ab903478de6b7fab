// The operation table (driver/ops) is consistent: what the daemon, the client
// and the docs derive from it can only be right if the declarations are.
#include "driver/ops/all.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace vireo::driver::ops {
namespace {

std::vector<std::string_view> segments(std::string_view path) {
    std::vector<std::string_view> out;
    while (!path.empty()) {
        path.remove_prefix(1);  // '/'
        auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    return out;
}

bool is_param(std::string_view seg) { return seg.size() > 2 && seg.front() == '{' && seg.back() == '}'; }

// Could one request path match both templates?
bool overlap(std::string_view a, std::string_view b) {
    auto sa = segments(a), sb = segments(b);
    if (sa.size() != sb.size()) return false;
    for (std::size_t i = 0; i < sa.size(); ++i)
        if (!is_param(sa[i]) && !is_param(sb[i]) && sa[i] != sb[i]) return false;
    return true;
}

// What the test needs to know about an operation's request fields.
struct FieldFacts {
    std::string name;
    bool document = false;
    bool is_string = false;
};

template <class Op>
std::vector<FieldFacts> fields_of() {
    std::vector<FieldFacts> out;
    std::apply(
        [&](const auto&... f) {
            (out.push_back({std::string(f.name), f.document,
                            std::is_same_v<std::remove_cvref_t<decltype(typename Op::Request{}.*(f.member))>,
                                           std::string>}),
             ...);
        },
        Op::fields);
    return out;
}

struct OpFacts {
    const OpInfo* info;
    std::vector<FieldFacts> fields;
};

std::vector<OpFacts> all_ops() {
    std::vector<OpFacts> out;
    for_each_op([&]<class Op>() { out.push_back({&Op::info, fields_of<Op>()}); });
    return out;
}

TEST(OpTable, NamesAreUniqueAndNamedByFamily) {
    std::set<std::string_view> names;
    for (const auto* info : kInfos) {
        EXPECT_TRUE(names.insert(info->name).second) << "duplicate operation name " << info->name;
        auto dot = info->name.find('.');
        ASSERT_NE(dot, std::string_view::npos) << info->name;
        auto family = info->name.substr(0, dot);
        EXPECT_TRUE(family == "host" || family == "job" || family == "domain" || family == "pool" ||
                    family == "volume" || family == "network" || family == "interface" || family == "snapshot")
            << info->name << ": unknown family (add it to this test with its header)";
        EXPECT_FALSE(info->summary.empty()) << info->name << " has no summary";
    }
    EXPECT_EQ(names.size(), kCount);
}

TEST(OpTable, RoutesAreUniqueAndUnambiguous) {
    for (std::size_t i = 0; i < kCount; ++i) {
        EXPECT_TRUE(kInfos[i]->path.starts_with("/v1/")) << kInfos[i]->name;
        for (std::size_t j = i + 1; j < kCount; ++j) {
            if (kInfos[i]->method != kInfos[j]->method) continue;
            EXPECT_FALSE(overlap(kInfos[i]->path, kInfos[j]->path))
                << kInfos[i]->name << " (" << kInfos[i]->path << ") and " << kInfos[j]->name << " ("
                << kInfos[j]->path << ") can match the same request";
        }
    }
}

TEST(OpTable, PathParametersAreStringFieldsOfTheRequest) {
    for (const auto& op : all_ops()) {
        std::map<std::string, const FieldFacts*> by_name;
        for (const auto& f : op.fields) EXPECT_TRUE(by_name.emplace(f.name, &f).second) << op.info->name << ": " << f.name;
        for (auto seg : segments(op.info->path)) {
            if (!is_param(seg)) continue;
            std::string name(seg.substr(1, seg.size() - 2));
            auto it = by_name.find(name);
            ASSERT_NE(it, by_name.end()) << op.info->name << ": {" << name << "} is not a request field";
            EXPECT_TRUE(it->second->is_string) << op.info->name << ": {" << name << "} must be a string";
        }
    }
}

TEST(OpTable, DocumentsTravelOnlyAsTheBodyOfPostOrPut) {
    for (const auto& op : all_ops()) {
        int documents = 0;
        for (const auto& f : op.fields) documents += f.document ? 1 : 0;
        EXPECT_LE(documents, 1) << op.info->name;
        if (documents > 0) {
            EXPECT_TRUE(op.info->method == Method::Post || op.info->method == Method::Put) << op.info->name;
        }
    }
}

TEST(OpTable, ReadOnlyAllowedOperationsAreQueries) {
    for (const auto* info : kInfos) {
        if (info->read_only_allowed) {
            EXPECT_TRUE(is_query(info->kind)) << info->name;
        }
        // Every query is a GET (what the read-only socket served before the
        // table existed; curl users rely on it).
        if (is_query(info->kind)) {
            EXPECT_EQ(info->method, Method::Get) << info->name;
        }
        // Changes never run on the event loop.
        if (!is_query(info->kind)) {
            EXPECT_NE(info->lane, Lane::Inline) << info->name;
        }
    }
}

TEST(OpTable, DestroyAndJobAbortNeverWaitBehindJobs) {
    EXPECT_EQ(DomainDestroy::info.lane, Lane::Urgent);
    EXPECT_EQ(DomainAbortJob::info.lane, Lane::Urgent);
    EXPECT_EQ(JobAbort::info.lane, Lane::Urgent);
    for (const auto* info : kInfos) {
        if (info->kind == Kind::Query) {
            EXPECT_TRUE(info->lane == Lane::Inline || info->lane == Lane::Query) << info->name;
        }
    }
}

TEST(OpTable, IndexesFollowTheTable) {
    EXPECT_EQ(kInfos[index_of<HostVersion>], &HostVersion::info);
    EXPECT_EQ(kInfos[index_of<DomainReset>], &DomainReset::info);
    EXPECT_EQ(kInfos[index_of<VolumeUpload>], &VolumeUpload::info);
    std::string seen;
    visit_op(index_of<PoolStart>, [&]<class Op>() { seen = Op::info.name; });
    EXPECT_EQ(seen, "pool.start");
    seen.clear();
    visit_op(kCount, [&]<class Op>() { seen = Op::info.name; });
    EXPECT_EQ(seen, "");
}

}  // namespace
}  // namespace vireo::driver::ops
