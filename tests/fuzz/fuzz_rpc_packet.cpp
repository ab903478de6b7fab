// libFuzzer target for the libvirt remote protocol decoder: any byte stream
// fed to a connection (cut into reads at points the input chooses) must end
// in replies, errors or a refused stream, never in a crash or a sanitizer
// report. Calls are decoded and admitted but their driver work is dropped,
// so the fuzzer cannot make the test driver write files.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "rpc/connection.hpp"
#include "testdrv/test_driver.hpp"

namespace {

struct Sink : vireo::rpc::Transport {
    void send(std::string packet) override { bytes += packet.size(); }
    std::size_t bytes = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static auto driver = vireo::testdrv::make_test_driver();
    auto sink = std::make_shared<Sink>();
    auto conn = std::make_shared<vireo::rpc::Connection>(
        *driver, size > 0 && (data[0] & 1), sink,
        [](const vireo::driver::ops::OpInfo&, std::string, std::function<std::string()>,
           std::function<std::string(const vireo::Error&)>) {});
    // The first byte also chooses the read size (1..128 bytes), so packets
    // straddle reads the way a socket delivers them.
    const std::size_t step = size > 0 ? (data[0] >> 1) + 1u : 1u;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (!in.empty()) in.remove_prefix(1);
    while (!in.empty()) {
        const std::size_t n = in.size() < step ? in.size() : step;
        if (!conn->feed(in.substr(0, n))) break;
        in.remove_prefix(n);
    }
    conn->closed();
    return 0;
}
