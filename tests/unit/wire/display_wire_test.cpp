// The wire shapes of screenshot (the image itself as the answer's body) and
// send-key (codeset by name, the key list as text).
#include <gtest/gtest.h>

#include "driver/ops/domain.hpp"
#include "wire/http.hpp"

using namespace vireo;
namespace ops = driver::ops;

TEST(DisplayWire, ScreenshotIsAnsweredAsTheImage) {
    const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + std::string("\0\x01\xff", 3);
    auto answer = wire::http::encode_reply<ops::DomainScreenshot>(driver::Screenshot{"image/png", png});
    EXPECT_EQ(answer.status, 200u);
    EXPECT_EQ(answer.content_type, "image/png");
    EXPECT_EQ(answer.body, png);
    auto back = wire::http::decode_reply<ops::DomainScreenshot>(answer.body);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->mime, "image/png");
    EXPECT_EQ(back->data, png);
    EXPECT_EQ(wire::http::screenshot_from_body("GIF89a").mime, "application/octet-stream");
}

TEST(DisplayWire, SendKeyRequestCarriesCodesetHoldtimeAndKeys) {
    auto req = wire::http::encode_request<ops::DomainSendKey>(
        {.ref = "web", .codeset = driver::KeyCodeset::Atset1, .holdtime = 50, .keys = "29,56,57427"});
    ASSERT_TRUE(req) << req.error().message;
    EXPECT_EQ(req->method, "POST");
    EXPECT_EQ(req->target, "/v1/domains/web/send-key");
    auto j = nlohmann::json::parse(req->body);
    EXPECT_EQ(j["codeset"], "atset1");
    EXPECT_EQ(j["holdtime"], 50);
    EXPECT_EQ(j["keys"], "29,56,57427");
    auto shot = wire::http::encode_request<ops::DomainScreenshot>({.ref = "web", .screen = 1});
    ASSERT_TRUE(shot);
    EXPECT_EQ(shot->target, "/v1/domains/web/screenshot?screen=1");
}
