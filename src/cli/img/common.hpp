// Shared pieces of vireo-img's subcommands: argument parsing helpers,
// opening images, the backing-chain view used by map/convert/compare.
#pragma once

#include <getopt.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/image.hpp"
#include "util/error.hpp"

namespace vireo::img {

// Long-option ids of every subcommand (what getopt_long returns for them).
enum LongOpt {
    kOptObject = 256, kOptImageOpts, kOptTargetImageOpts, kOptTargetIsZero, kOptSalvage, kOptBitmaps,
    kOptFlushInterval, kOptNoDrain, kOptPattern, kOptOutput, kOptBackingChain, kOptShrink, kOptPrealloc, kOptSize,
    kOptSkipBrokenBitmaps,
};

// getopt_long table: a command's own long options, then the ones qemu-img
// accepts everywhere and vireo-img ignores (--object, --image-opts and,
// unless `force_share` is false, --force-share = -U), then the terminator.
std::vector<option> long_options(std::initializer_list<option> own, bool force_share = true);

// The --output value (human or json), with qemu-img's message when wrong.
bool valid_output(const std::string& output);

// The single image argument at argv[optind], opened for reading as
// info/map/check open it; nullptr (after the error is reported) when it is
// missing or cannot be opened.
storage::ImagePtr open_image_arg(int argc, char** argv, const std::string& fmt, bool writable, bool backing);

// Whether n bytes at p are all zero.
bool all_zero(const char* p, size_t n);

// Print "vireo-img: <msg>" on stderr.
void report(const std::string& msg);

// qemu_strtosz: "10G", "512", "1.5M", "4k" (binary units).
Result<uint64_t> parse_size(const std::string& s);

// "-o a=b,c=d" (",," is a literal comma); later -o options add to earlier ones.
Result<std::map<std::string, std::string>> parse_options(const std::string& s);

// Options for create/convert targets from -o values (and -b/-F).
Result<storage::CreateOptions> create_options_from(storage::ImageFormat fmt, const std::map<std::string, std::string>& o);

// One run of the fully resolved chain at `off`.
struct ChainExtent {
    uint64_t length = 0;
    bool present = false;     // allocated in some layer
    bool zero = false;        // reads as zero
    bool data = false;        // backed by data in a layer
    int depth = 0;            // layer index (0 = top)
    std::optional<uint64_t> offset;
    std::string file;         // filename of that layer
};
Result<ChainExtent> chain_status(storage::Image* top, uint64_t off, uint64_t len);

// Progress bar as qemu-img -p prints it.
class Progress {
public:
    explicit Progress(bool on) : on_(on) {}
    void update(double fraction);
    void done();

private:
    bool on_;
    int last_ = -1;
};

Result<storage::ImagePtr> open_for(const std::string& path, const std::string& fmt, bool writable,
                                   storage::CacheMode cache = storage::CacheMode::Writeback, bool backing = true,
                                   bool check_mode = false);

int cmd_create(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_check(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_compare(int argc, char** argv);
int cmd_map(int argc, char** argv);
int cmd_snapshot(int argc, char** argv);
int cmd_resize(int argc, char** argv);
int cmd_rebase(int argc, char** argv);
int cmd_commit(int argc, char** argv);
int cmd_amend(int argc, char** argv);
int cmd_measure(int argc, char** argv);
int cmd_dd(int argc, char** argv);
int cmd_bench(int argc, char** argv);

}  // namespace vireo::img
