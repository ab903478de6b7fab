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

#include "storage/chain.hpp"
#include "storage/image.hpp"
#include "storage/options.hpp"
#include "util/error.hpp"

namespace vireo::img {

// Long-option ids of every subcommand (what getopt_long returns for them).
enum LongOpt {
    kOptObject = 256, kOptImageOpts, kOptTargetImageOpts, kOptTargetIsZero, kOptSalvage, kOptBitmaps,
    kOptFlushInterval, kOptNoDrain, kOptPattern, kOptOutput, kOptBackingChain, kOptShrink, kOptPrealloc, kOptSize,
    kOptSkipBrokenBitmaps, kOptAdd, kOptRemove, kOptClear, kOptEnable, kOptDisable, kOptMerge,
};

// getopt_long table: a command's own long options, then the ones qemu-img
// accepts everywhere and vireo-img ignores (--object, --image-opts and,
// unless `force_share` is false, --force-share = -U), then the terminator.
std::vector<option> long_options(std::initializer_list<option> own, bool force_share = true);

// --object and --image-opts, the options every subcommand takes (c is
// kOptObject with optarg, or kOptImageOpts). --object secret,id=ID,
// data=VALUE | file=PATH [,format=raw|base64] keeps a secret for the
// key-secret options (file= keeps the secret off the command line that
// the process list shows: use it, or file=/dev/fd/N); other object types
// are refused. False (after reporting) when the option is wrong.
bool global_option(int c);
const storage::Secrets& secrets();

// An image argument: a file name, or with --image-opts a QEMU option
// string. Of the latter vireo-img takes driver=, file.filename= (or
// filename=), file.driver=file, and the key secret of encrypted images:
// key-secret= (driver=luks) or encrypt.key-secret= (driver=qcow2).
struct ImageArg {
    std::string path;
    std::string format;                     // "" = probe
    std::optional<std::string> key_secret;  // the secret's value
};
Result<ImageArg> image_arg(const std::string& arg, const std::string& fmt);

// The --output value (human or json), with qemu-img's message when wrong.
bool valid_output(const std::string& output);

// The single image argument at argv[optind], opened for reading as
// info/map/check open it; nullptr (after the error is reported) when it is
// missing or cannot be opened.
// `force_share`: -U; `no_io`: only the header is read (info), as qemu-img
// locks then.
storage::ImagePtr open_image_arg(int argc, char** argv, const std::string& fmt, bool writable, bool backing,
                                 bool force_share = false, bool no_io = false);

// An option getopt_long did not accept (c is '?' or ':'): qemu-img's
// message ("unrecognized option '-U'", "missing argument for option '-f'")
// and its hint. Returns `rc`.
int bad_option(int c, char** argv, int rc = 1);

// Whether n bytes at p are all zero.
bool all_zero(const char* p, size_t n);

// The program name as invoked (argv[0]'s last component: "qemu-img" when
// run through a symlink of that name), which starts every message as
// qemu-img's own name starts its messages; "vireo-img" until set.
void set_program_name(const char* argv0);
const std::string& program_name();

// --image-opts: image file names on the command line are option strings
// ("driver=qcow2,file.filename=x.qcow2"); image_name() turns one into the
// name storage opens (its json: form), and passes other names through.
void set_image_opts(bool on);
bool image_opts();
std::string image_name(const std::string& arg);

// Print "<program>: <msg>" on stderr.
void report(const std::string& msg);
// qemu-img's error_exit(): the message and "Try '<program> --help' for more
// information"; returns `rc` (1, as qemu-img exits).
int error_exit(const std::string& msg, int rc = 1);

using storage::parse_size;

// "-o a=b,c=d" (",," is a literal comma); later -o options add to earlier ones.
Result<std::map<std::string, std::string>> parse_options(const std::string& s);

// Whether an -o list asks for help ("help" among its options).
bool has_help_option(const std::string& s);
// qemu-img's `-o help` for creating `fmt` images: the format's options, or
// with a file name given those merged with the file protocol's. Returns
// the exit code.
int print_create_help(const std::string& fmt, const std::optional<std::string>& filename);
// amend's `-o help` for a `fmt` image. Returns the exit code.
int print_amend_help(const std::string& fmt);

// Options for create targets from -o values (see storage/options.hpp).
inline Result<storage::CreateOptions> create_options_from(storage::ImageFormat fmt,
                                                          const std::map<std::string, std::string>& o) {
    return storage::parse_create_options(fmt, o, secrets());
}

using storage::ChainExtent;
using storage::chain_status;

// qemu-img's -p progress line, "    (12.50/100%)\r" on stdout, printed by
// qemu's rule: when the value has grown by more than `min_skip` percent
// since the last line, and always at 0 and at 100; "\n" at the end. Values
// are single-precision floats as in qemu, so the same steps give the same
// lines byte for byte. Off: prints nothing.
class Progress {
public:
    Progress(bool on, float min_skip) : on_(on), min_skip_(min_skip) {}
    // qemu_progress_print(value, 0): the value itself.
    void set(float value) { advance(value); }
    // qemu_progress_print(delta, 100): the value grows by `delta`.
    void add(float delta) { advance(current_ + delta / 100 * 100); }
    void end();

private:
    void advance(float value);
    bool on_;
    float min_skip_;
    float current_ = 0, last_print_ = 0;
};

// Open an image as the subcommands do; it is locked as qemu-img locks it
// (storage/lock.hpp): `force_share` is -U, `no_io` a header-only open.
Result<storage::ImagePtr> open_for(const std::string& path, const std::string& fmt, bool writable,
                                   storage::CacheMode cache = storage::CacheMode::Writeback, bool backing = true,
                                   bool check_mode = false, bool force_share = false, bool no_io = false);

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
int cmd_bitmap(int argc, char** argv);

}  // namespace vireo::img
