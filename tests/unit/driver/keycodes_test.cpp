// send-key's codesets: names, translation to QEMU's key numbers, the key list.
#include <gtest/gtest.h>

#include "driver/keycodes.hpp"

using namespace vireo;
using namespace vireo::driver;

TEST(Keycodes, CodesetsByName) {
    EXPECT_EQ(*keycodeset_from_name("linux"), KeyCodeset::Linux);
    EXPECT_EQ(*keycodeset_from_name("xt_kbd"), KeyCodeset::XtKbd);
    EXPECT_EQ(*keycodeset_from_name("rfb"), KeyCodeset::Qnum);
    auto unknown = keycodeset_from_name("bar");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message, "unknown codeset: 'bar'");
    auto usb = keycodeset_from_name("usb");
    ASSERT_FALSE(usb);
    EXPECT_EQ(usb.error().code, ErrorCode::Unsupported);
}

TEST(Keycodes, LinuxNamesAndTheirQemuNumbers) {
    EXPECT_EQ(keycode_from_name(KeyCodeset::Linux, "KEY_A"), 30u);
    EXPECT_EQ(keycode_from_name(KeyCodeset::Linux, "KEY_SYSRQ"), 99u);
    EXPECT_FALSE(keycode_from_name(KeyCodeset::Linux, "A"));
    EXPECT_FALSE(keycode_from_name(KeyCodeset::Xt, "KEY_A")) << "only the linux codeset has names";
    EXPECT_EQ(keycode_to_qnum(KeyCodeset::Linux, 30), 0x1eu);       // A
    EXPECT_EQ(keycode_to_qnum(KeyCodeset::Linux, 99), 0x54u);       // SysRq
    EXPECT_EQ(keycode_to_qnum(KeyCodeset::Linux, 111), 0xd3u);      // Delete (e0 53)
    EXPECT_EQ(keycode_to_qnum(KeyCodeset::Linux, 97), 0x9du);       // right Ctrl (e0 1d)
    EXPECT_FALSE(keycode_to_qnum(KeyCodeset::Linux, 500));
    EXPECT_EQ(keycode_to_qnum(KeyCodeset::Atset1, 0xe053), 0xd3u);
    EXPECT_EQ(keycode_to_qnum(KeyCodeset::Xt, 0x1e), 0x1eu);
    EXPECT_FALSE(keycode_to_qnum(KeyCodeset::Xt, 0x9e));
    for (const auto& name : keycode_names(KeyCodeset::Linux)) {
        auto code = keycode_from_name(KeyCodeset::Linux, name);
        ASSERT_TRUE(code) << name;
        EXPECT_TRUE(keycode_to_qnum(KeyCodeset::Linux, *code)) << name;
    }
}

TEST(Keycodes, KeyListsOfOneToSixteenCodes) {
    EXPECT_EQ(join_keycodes({29, 56, 111}), "29,56,111");
    EXPECT_EQ(*split_keycodes("29,56,111"), (std::vector<unsigned>{29, 56, 111}));
    EXPECT_FALSE(split_keycodes(""));
    EXPECT_FALSE(split_keycodes("1,,2"));
    EXPECT_FALSE(split_keycodes("x"));
    EXPECT_FALSE(split_keycodes("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"));
}
