// An NBD client (the protocol of github.com/NetworkBlockDevice/nbd,
// doc/proto.md): fixed newstyle handshake, NBD_OPT_GO (NBD_OPT_EXPORT_NAME
// with servers that lack it), structured replies and the base:allocation
// metadata context where the server offers them (block status: holes and
// zeroes), simple replies otherwise; an export is an Image whose
// contents are the export's bytes (QEMU's raw format over its nbd
// protocol driver), so vireo-img reads and writes qemu-nbd exports.
//
//   auto a = storage::parse_nbd_uri("nbd+unix:///disk0?socket=/run/nbd.sock");
//   auto img = storage::NbdImage::open(*a, {.writable = false});
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "storage/image.hpp"
#include "util/fd.hpp"

namespace vireo::storage {

// Where an export is: a unix socket or a TCP host and port, and its name.
struct NbdAddress {
    bool unix_socket = false;
    std::string path;            // unix socket
    std::string host;            // TCP
    std::string port = "10809";  // TCP
    std::optional<std::string> export_name;
};

// Whether a file name names an NBD export ("nbd://", "nbd+tcp://",
// "nbd+unix://", or the older "nbd:host:port", "nbd:unix:path").
bool is_nbd_name(std::string_view name);
// The address in such a name, with QEMU's messages for malformed ones.
Result<NbdAddress> parse_nbd_uri(std::string_view name);
// QEMU's name for an export ("nbd+unix://?socket=/x.sock",
// "nbd://host:10809/name"): what info and map print as its file name.
std::string nbd_canonical_name(const NbdAddress& a);

class NbdImage final : public Image {
public:
    // Connect and negotiate; `label` is the format name info reports
    // ("raw", or "nbd" when the nbd driver was named directly).
    static Result<ImagePtr> open(const NbdAddress& a, const OpenOptions& opts, std::string label = "raw");
    ~NbdImage() override;

    ImageFormat format() const override { return ImageFormat::Raw; }
    uint64_t size() const override { return size_; }
    const std::string& filename() const override { return filename_; }
    bool writable() const override { return writable_; }
    Status read(uint64_t off, void* buf, size_t len) override;
    Status write(uint64_t off, const void* buf, size_t len) override;
    Status write_zeroes(uint64_t off, uint64_t len, bool unmap) override;
    Status discard(uint64_t off, uint64_t len) override;
    Status flush() override;
    Status close() override;
    Status resize(uint64_t new_size, bool shrink, Preallocation prealloc) override;
    // From base:allocation (holes, zeroes); all data without it.
    Result<Extent> block_status(uint64_t off, uint64_t len) override;
    uint32_t cluster_size() const override { return 65536; }
    Result<ImageInfo> info() override;

private:
    Status connect(const NbdAddress& a);
    Status handshake(const NbdAddress& a);
    Status option_go(const std::string& name);
    // Ask for structured replies and the base:allocation context; false
    // when the server does not offer them (not an error).
    Result<bool> option_structured();
    Result<bool> option_meta_context(const std::string& name);
    // One option request; its replies until ACK go to `on_reply` (type,
    // payload). Error replies end it with their message.
    Status option(uint32_t opt, const std::string& data,
                  const std::function<Status(uint32_t, const std::string&)>& on_reply);
    Status option_export_name(const std::string& name);
    // One request and its reply (simple, or structured chunks); `out` is
    // the payload sent (write), `in` the buffer a read fills; a block
    // status request leaves its first extent in `status`.
    struct StatusOut {
        uint32_t length = 0, flags = 0;
        bool got = false;
    };
    Status request(uint16_t type, uint16_t flags, uint64_t off, uint32_t len, const void* out, void* in,
                   StatusOut* status = nullptr);
    Status check_range(uint64_t off, uint64_t len) const;
    Status send_all(const void* p, size_t n);
    Status recv_all(void* p, size_t n);

    UniqueFd fd_;
    std::string filename_;
    std::string label_;
    uint64_t size_ = 0;
    uint16_t tflags_ = 0;      // transmission flags
    uint32_t min_block_ = 1;   // NBD_INFO_BLOCK_SIZE
    uint32_t max_block_ = 32U << 20;
    bool writable_ = false;
    bool structured_ = false;
    std::optional<uint32_t> alloc_context_;  // base:allocation's id
    bool closed_ = false;
    uint64_t handle_ = 0;
};

}  // namespace vireo::storage
