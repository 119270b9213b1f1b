// Chat requests with images (server/api_request.h, data_url.h, image_prompt.h): image_url parts
// with base64 data: URLs are decoded and preprocessed while parsing, bad ones are 400s naming
// the part, and the prompt carries each image's §5.8 layout so usage.prompt_tokens counts it.
#include <gtest/gtest.h>

#include "herd/server/api_request.h"
#include "herd/server/data_url.h"
#include "herd/server/image_prompt.h"
#include "io/image_test_util.h"
#include "tokenizer/llama4_tokenizer.h"

namespace herd::server {
namespace {

using test::Bytes;

std::string base64(const Bytes& b) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < b.size(); i += 3) {
    const uint32_t w = uint32_t(b[i]) << 16 | (i + 1 < b.size() ? b[i + 1] << 8 : 0) |
                       (i + 2 < b.size() ? b[i + 2] : 0);
    out += a[w >> 18];
    out += a[(w >> 12) & 63];
    out += i + 1 < b.size() ? a[(w >> 6) & 63] : '=';
    out += i + 2 < b.size() ? a[w & 63] : '=';
  }
  return out;
}

Bytes png(int w, int h) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 7);
  return test::encode_png(w, h, 3, px);
}

std::string image_part(const std::string& url) {
  return R"({"type":"image_url","image_url":{"url":")" + url + R"("}})";
}

// A user message with the given parts.
std::string body(const std::string& parts) {
  return R"({"messages":[{"role":"user","content":[)" + parts + "]}]}";
}

ImageSettings enabled() {
  ImageSettings s;
  s.enabled = true;
  return s;
}

std::string error_of(const std::string& b, const ImageSettings& s = enabled()) {
  auto r = parse_api_request(b, Endpoint::kChat, s);
  EXPECT_FALSE(r) << "expected an error";
  return r ? std::string() : r.status().message();
}

TEST(ImageRequest, TwoImagesCountEveryToken) {
  const std::string parts = R"({"type":"text","text":"Compare"},)" +
                            image_part("data:image/png;base64," + base64(png(640, 480))) + "," +
                            image_part("data:image/png;base64," + base64(png(100, 100)));
  auto r = parse_api_request(body(parts), Endpoint::kChat, enabled());
  ASSERT_TRUE(r) << r.status().message();
  ASSERT_EQ(r->images.size(), 2u);
  EXPECT_EQ(r->images[0].tile_rows, 2);
  EXPECT_EQ(r->images[0].tile_cols, 2);
  EXPECT_EQ(r->images[0].n_tiles(), 5);
  EXPECT_EQ(r->images[1].n_tiles(), 1);
  // The data is dropped from the messages once decoded.
  EXPECT_EQ(r->messages[0]["content"][1]["image_url"]["url"], "data:");

  const Tokenizer& tok = test::llama4_tokenizer();
  auto chat = render_chat(tok, r->messages);
  ASSERT_TRUE(chat) << chat.status().message();
  auto p = chat_prompt_with_images(tok, *chat, r->images, enabled());
  ASSERT_TRUE(p) << p.status().message();
  // 640×480 costs 727 tokens and 100×100 147 (spec §5.1), each in place of one <|image|>.
  EXPECT_EQ(p->ids.size(), chat->ids.size() - 2 + 727 + 147);
  ASSERT_EQ(p->patch_runs.size(), 2u);
  EXPECT_EQ(p->patch_runs[0].size(), 5u);
  EXPECT_EQ(p->patch_runs[1].size(), 1u);
  EXPECT_EQ(p->ids[p->patch_runs[1][0] + 143], 200092);  // <|patch|>
  EXPECT_EQ(p->ids[p->patch_runs[1][0] + 144], 200081);  // <|image_end|>
}

TEST(ImageRequest, BadImagesAre400s) {
  const std::string where = "messages[0].content[1].image_url";
  auto with = [](const std::string& url) {
    return body(R"({"type":"text","text":"x"},)" + image_part(url));
  };
  Bytes truncated = png(64, 64);
  truncated.resize(truncated.size() / 2);
  EXPECT_EQ(error_of(with("data:image/png;base64," + base64(truncated)))
                .rfind(where + ": truncated PNG", 0),
            0u);
  const Bytes huge = test::png_with_idat(20000, 20000, Bytes(60001, 0));
  EXPECT_EQ(error_of(with("data:image/png;base64," + base64(huge))),
            where + ": 20000x20000 pixels, more than the limit of 16384 per side");
  const std::string text = "Hello, this is plain text and no picture at all.";
  EXPECT_EQ(error_of(with("data:image/png;base64," + base64(Bytes(text.begin(), text.end()))))
                .rfind(where + ": not a JPEG, PNG, GIF or BMP image", 0),
            0u);
  EXPECT_EQ(error_of(with("data:image/png;base64,iVBO*w0K")),
            where + ".url: not valid base64: character 0x2a at offset 4 of the data");
  EXPECT_EQ(error_of(with("https://example.com/cat.png")),
            where + ".url: only data: URLs are accepted, got https: (this server fetches nothing)");
  EXPECT_EQ(error_of(with("data:image/png,rawbytes")),
            where + ".url: expected a base64 data: URL (data:<media type>;base64,<data>)");
  EXPECT_EQ(error_of(body(R"({"type":"image_url","image_url":{}})")),
            "messages[0].content[0].image_url.url: expected a string (a data: URL)");
  EXPECT_EQ(
      error_of(body(R"({"type":"image"})")).rfind("messages[0].content[0].type: an \"image\"", 0),
      0u);
}

TEST(ImageRequest, LimitsAreSettings) {
  const std::string url = "data:image/png;base64," + base64(png(300, 200));
  ImageSettings s = enabled();
  s.limits.max_pixels = 50000;
  EXPECT_EQ(
      error_of(body(image_part(url)), s),
      "messages[0].content[0].image_url: 300x200 = 60000 pixels, more than the limit of 50000");
  s = enabled();
  s.max_images = 1;
  EXPECT_EQ(error_of(body(image_part(url) + "," + image_part(url)), s),
            "messages[0].content[1]: more than 1 images in one request");
  // The image URL as a plain string (some clients) is accepted too.
  auto r = parse_api_request(body(R"({"type":"image_url","image_url":")" + url + "\"}"),
                             Endpoint::kChat, enabled());
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->images.size(), 1u);
}

TEST(ImageRequest, NoVisionEncoder) {
  const std::string url = "data:image/png;base64," + base64(png(8, 8));
  EXPECT_EQ(error_of(body(image_part(url)), ImageSettings{}),
            "messages[0].content[0]: image content needs a model with a vision encoder; this one "
            "has none");
}

TEST(DataUrl, Base64) {
  auto d = decode_data_url("data:text/plain;base64,SGVsbG8=");
  ASSERT_TRUE(d);
  EXPECT_EQ(std::string(d->begin(), d->end()), "Hello");
  d = decode_data_url("data:;base64,SGVs\nbG8");  // no padding, a line break
  ASSERT_TRUE(d);
  EXPECT_EQ(std::string(d->begin(), d->end()), "Hello");
  EXPECT_FALSE(decode_data_url("data:;base64,SGVsbG8=A"));  // data after padding
  EXPECT_FALSE(decode_data_url("data:;base64,S"));          // a lone character
  EXPECT_FALSE(decode_data_url("data:;base64,"));
  EXPECT_EQ(decode_data_url("file:///etc/passwd").status().message(),
            "only data: URLs are accepted, got file: (this server fetches nothing)");
}

}  // namespace
}  // namespace herd::server
