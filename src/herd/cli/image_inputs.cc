#include "herd/cli/image_inputs.h"

#include <chrono>

#include "herd/base/log.h"
#include "herd/base/mapped_file.h"

namespace herd::cli {

Result<CliImages> load_cli_images(Engine& e, const std::vector<std::string>& files) {
  CliImages out;
  if (!e.has_tokenizer())
    return make_error("--image needs the model's tokenizer (for the image tokens)");
  auto enc = VisionEncoder::create(e.model(), e.pool(), e.decoder().precision());
  if (!enc) return make_error("--image: {}", enc.status().message());
  out.encoder = std::move(enc).value();
  for (const std::string& f : files) {
    HERD_ASSIGN_OR_RETURN(std::string bytes, read_text_file(f));
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    HERD_ASSIGN_OR_RETURN(ImageTiles t,
                          image_tiles_from_bytes({p, bytes.size()}, *out.encoder, ImageLimits{},
                                                 VisionPreprocessOptions{}, f));
    out.tiles.push_back(std::move(t));
  }
  return out;
}

Result<std::vector<int32_t>> image_layout(const Engine& e, const CliImages& images, size_t i) {
  std::vector<int32_t> ids;
  HERD_TRY(
      append_image_layout(e.tokenizer(), image_token_shape(images.tiles[i], *images.encoder), ids));
  return ids;
}

Status attach_images(Engine& e, CliImages& images, Request& req) {
  const auto t0 = std::chrono::steady_clock::now();
  HERD_ASSIGN_OR_RETURN(SplicedImages s,
                        splice_images(*images.encoder, e.tokenizer(), req.prompt, images.tiles));
  int64_t tiles = 0;
  for (const ImageTiles& t : images.tiles) tiles += t.n_tiles();
  log(LogLevel::kInfo, "vision: {} image(s), {} tiles, {} patch tokens encoded in {:.2f} s",
      images.tiles.size(), tiles, s.positions.size(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  req.embeddings = std::move(s.embeddings);
  req.embedding_positions = std::move(s.positions);
  return Status::ok();
}

}  // namespace herd::cli
