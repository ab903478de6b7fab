#include <gtest/gtest.h>

#include "conf/units.hpp"

using namespace vireo::conf;

TEST(ConfUnits, EveryLibvirtUnitScalesToKib) {
    EXPECT_EQ(*scale_to_kib(2048, "b"), 2u);
    EXPECT_EQ(*scale_to_kib(2048, "bytes"), 2u);
    EXPECT_EQ(*scale_to_kib(1, "KiB"), 1u);
    EXPECT_EQ(*scale_to_kib(1, "k"), 1u);
    EXPECT_EQ(*scale_to_kib(1, "K"), 1u);
    EXPECT_EQ(*scale_to_kib(1024, "KB"), 1000u);
    EXPECT_EQ(*scale_to_kib(1, "MiB"), 1024u);
    EXPECT_EQ(*scale_to_kib(1, "M"), 1024u);
    EXPECT_EQ(*scale_to_kib(1, "MB"), 977u);  // 1000000 bytes rounded up to KiB
    EXPECT_EQ(*scale_to_kib(4, "GiB"), 4u * 1024 * 1024);
    EXPECT_EQ(*scale_to_kib(4, "G"), 4u * 1024 * 1024);
    EXPECT_EQ(*scale_to_kib(1, "GB"), 976563u);
    EXPECT_EQ(*scale_to_kib(1, "TiB"), 1024ull * 1024 * 1024);
    EXPECT_EQ(*scale_to_kib(1, "T"), 1024ull * 1024 * 1024);
    EXPECT_EQ(*scale_to_kib(1, "PiB"), 1024ull * 1024 * 1024 * 1024);
    EXPECT_EQ(*scale_to_kib(1, "EiB"), 1024ull * 1024 * 1024 * 1024 * 1024);
    EXPECT_EQ(*scale_to_kib(7, ""), 7u);  // default unit KiB
}

TEST(ConfUnits, UnknownUnitAndOverflowAreErrors) {
    auto bad = scale_to_kib(1, "furlong");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("unknown unit 'furlong'"), std::string::npos);
    auto huge = scale_to_bytes(1ull << 60, "EiB");
    ASSERT_FALSE(huge);
    EXPECT_NE(huge.error().message.find("too large"), std::string::npos);
}

TEST(ConfUnits, ParseSizeWithUnits) {
    EXPECT_EQ(*parse_size("4G"), 4ull << 30);
    EXPECT_EQ(*parse_size("512 MiB"), 512ull << 20);
    EXPECT_EQ(*parse_size("100"), 100u);
    EXPECT_EQ(*parse_size("100", "KiB"), 102400u);
    EXPECT_EQ(*parse_size("1kb"), 1000u);
    EXPECT_FALSE(parse_size("G4"));
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("99999999999999999999999"));
}
