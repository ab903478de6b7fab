// vireo-img: qemu-img's subcommands, options, output and exit codes on
// vireo's own image engine.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/img/common.hpp"
#include "storage/crypto.hpp"

namespace {

void usage() {
    std::puts(
        "vireo-img: disk image utility (qemu-img compatible)\n"
        "usage: vireo-img [standard options] command [command options]\n"
        "\n"
        "Command syntax:\n"
        "  amend [-f fmt] -o options filename\n"
        "  bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b source_file [-F "
        "source_fmt]] [-g granularity] [--object objectdef] [--image-opts | -f fmt] filename bitmap\n"
        "  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-n] [-o offset] "
        "[--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] filename\n"
        "  check [--output=ofmt] [-r [leaks | all]] [-f fmt] filename\n"
        "  commit [-f fmt] [-t cache] [-b base] [-d] [-p] filename\n"
        "  compare [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] filename1 filename2\n"
        "  convert [-c] [-p] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file] "
        "[-o options] [-l snapshot_param] [-S sparse_size] [-m num_coroutines] [-W] filename [filename2 [...]] "
        "output_filename\n"
        "  create [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]\n"
        "  dd [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output\n"
        "  info [-f fmt] [--output=ofmt] [--backing-chain] filename\n"
        "  map [-f fmt] [--output=ofmt] filename\n"
        "  measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [-l snapshot_param] filename]\n"
        "  snapshot [-l | -a snapshot | -c snapshot | -d snapshot] filename\n"
        "  rebase [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] filename\n"
        "  resize [--shrink] [--preallocation=prealloc] [-f fmt] filename [+ | -]size\n");
}

}  // namespace

int main(int argc, char** argv) {
    using namespace vireo::img;
    set_program_name(argv[0]);
    // LUKS and encrypted qcow2 (storage/crypto.hpp: only the programs that
    // handle encrypted images link libcrypto).
    vireo::storage::crypto::enable_openssl();
    if (argc < 2) {
        return error_exit("Not enough arguments");
    }
    std::string cmd = argv[1];
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
        usage();
        return 0;
    }
    if (cmd == "-V" || cmd == "--version") {
        std::puts("vireo-img version 0.1.0 (qemu-img 7.2 compatible)");
        return 0;
    }
    struct Entry {
        const char* name;
        int (*fn)(int, char**);
    };
    static const Entry kCommands[] = {
        {"create", cmd_create},   {"info", cmd_info},         {"check", cmd_check},   {"convert", cmd_convert},
        {"compare", cmd_compare}, {"map", cmd_map},           {"snapshot", cmd_snapshot},
        {"resize", cmd_resize},   {"rebase", cmd_rebase},     {"commit", cmd_commit}, {"amend", cmd_amend},
        {"measure", cmd_measure}, {"dd", cmd_dd},             {"bench", cmd_bench},   {"bitmap", cmd_bitmap},
    };
    // --image-opts holds for every image name of the command; the target's
    // option string is refused rather than read as a file name.
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--image-opts") set_image_opts(true);
        if (a == "--target-image-opts") {
            report(a + " is not supported by vireo-img: give the target's file name");
            return 1;
        }
    }
    for (const auto& e : kCommands)
        if (cmd == e.name) return e.fn(argc - 1, argv + 1);
    return error_exit("Command not found: " + cmd);
}
