// A domain's disks: domblkstat, domblkinfo, blockresize (domblklist is in
// commands_domain.cpp), and the block jobs: blockcommit, blockpull,
// blockcopy, blockjob. Output as virsh's (block_format.hpp).
//
// As virsh does, the waiting is the client's: --wait polls the disk's job
// every half second (--verbose prints its progress), and --pivot,
// --keep-overlay, --finish end a ready job with blockjob's abort call.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/vireo/block_format.hpp"
#include "cli/vireo/commands.hpp"
#include "cli/vireo/job_format.hpp"
#include "cli/vireo/session.hpp"
#include "driver/ops/domain.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

int cmd_domblkstat(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string device = a.get("device");
    auto st = s.conn()->call<ops::DomainBlockStats>({.ref = dom->name, .device = device});
    if (!st) {  // virsh: the reason alone (its first call, asking how many counters, fails)
        s.error(st.error().full_message());
        return 1;
    }
    if (a.has("json")) {
        s.out("{}\n", block_stats_json(*st).dump(2));
        return 0;
    }
    s.out("{}", format_block_stats(*st, device, a.has("human")));
    s.info("\n");
    return 0;
}

int cmd_domblkinfo(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const bool all = a.has("all"), human = a.has("human");
    if (!all && !a.has("device")) {
        s.error("command 'domblkinfo' requires <device> option");
        return 1;
    }
    if (!all) {
        auto info = s.conn()->call<ops::DomainBlockInfo>({.ref = dom->name, .device = a.get("device")});
        if (!info) {
            s.error(info.error().full_message());
            return 1;
        }
        if (a.has("json")) {
            s.out("{}\n", block_info_json(*info).dump(2));
            return 0;
        }
        s.out("{}", format_block_info(*info, human));
        s.info("\n");
        return 0;
    }
    // --all: every disk of the current definition, as virsh walks the XML;
    // a disk without a medium is "-" without asking.
    auto disks = s.conn()->domain_disks(dom->name, false);
    if (!disks) {
        s.error(disks.error().full_message());
        return 1;
    }
    std::vector<driver::BlockInfo> rows;
    for (const auto& d : *disks) {
        if (d.source == "-") {
            rows.push_back({d.target, 0, 0, 0});
            continue;
        }
        auto info = s.conn()->call<ops::DomainBlockInfo>({.ref = dom->name, .device = d.target});
        if (!info) {
            s.error(info.error().full_message());
            return 1;
        }
        rows.push_back(std::move(*info));
    }
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : rows) out.push_back(block_info_json(r));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    s.out("{}", format_block_info_table(rows, human, !s.quiet()));
    s.info("\n");
    return 0;
}

int cmd_blockresize(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string path = a.get("path");
    auto size = parse_resize_size(a.get("size"), a.has("bytes"));
    if (!size) {  // virsh's headline, then libvirt's reason when it has one
        s.error(size.error().message);
        if (size.error().cause) s.error(size.error().cause->full_message());
        return 1;
    }
    auto st = s.conn()->call<ops::DomainBlockResize>({.ref = dom->name, .path = path, .size = *size});
    if (!st) {
        s.error(fmt::format("Failed to resize block device '{}'", path), st.error());
        return 1;
    }
    s.info("Block device '{}' is resized\n", path);
    return 0;
}

// --- block jobs ------------------------------------------------------------------

// --bandwidth of the job verbs (MiB/s, bytes/s with --bytes); 0 when absent.
std::optional<std::uint64_t> bandwidth_of(Session& s, const Args& a) {
    if (!a.has("bandwidth")) return 0;
    auto bw = parse_block_bandwidth(a.get("bandwidth"), a.has("bytes"));
    if (!bw) {
        s.error(bw.error().message);
        return std::nullopt;
    }
    return *bw;
}

enum class JobEnd { Completed, Ready, Failed, Cancelled };

// How a job waited for with --wait ended: polled every half second, the
// progress on stderr with --verbose; a copy or active commit is done waiting
// once ready. --timeout aborts it (asynchronously with --async).
JobEnd wait_block_job(Session& s, const std::string& dom, const std::string& path, bool verbose, std::optional<std::uint64_t> timeout,
                      bool async_abort) {
    const auto start = std::chrono::steady_clock::now();
    bool aborting = false;
    while (true) {
        auto params = s.conn()->call<ops::DomainBlockJobInfo>({.ref = dom, .path = path});
        if (!params) {
            s.error(params.error().full_message());
            return JobEnd::Failed;
        }
        const BlockJobView job = block_job_view(*params);
        if (!job.present) return JobEnd::Failed;
        if (verbose && job.active()) {
            std::fflush(stdout);
            fmt::print(stderr, "{}", format_job_progress(block_job_label(job.type), block_job_percent(job.cur, job.end)));
            std::fflush(stderr);
        }
        if (job.state == "ready" && !aborting) return JobEnd::Ready;
        if (job.state == "completed") return JobEnd::Completed;
        if (job.state == "cancelled") return JobEnd::Cancelled;
        if (job.state == "failed") {
            if (!job.error.empty()) s.error(job.error);
            return JobEnd::Failed;
        }
        if (timeout && !aborting && std::chrono::steady_clock::now() - start >= std::chrono::seconds(*timeout)) {
            aborting = true;
            auto st = s.conn()->call<ops::DomainBlockJobAbort>({.ref = dom, .path = path, .async_end = async_abort});
            if (!st) {
                s.error("failed to abort job for disk " + path, st.error());
                return JobEnd::Failed;
            }
            if (async_abort) return JobEnd::Cancelled;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

// virsh's checks of the waiting options; false (error printed) when they do not fit.
bool check_wait_options(Session& s, const Args& a, bool blocking) {
    if (blocking) return true;
    if (a.has("verbose") || a.has("timeout")) {
        s.error("missing --wait option");
        return false;
    }
    if (a.has("async")) {
        s.error("--async requires --wait");
        return false;
    }
    return true;
}

// End a ready job: pivot or not; false (error printed) when that failed.
bool end_ready_job(Session& s, const std::string& dom, const std::string& path, bool pivot, std::string_view what) {
    auto st = s.conn()->call<ops::DomainBlockJobAbort>({.ref = dom, .path = path, .pivot = pivot});
    if (!st) {
        s.error(fmt::format("failed to {} job for disk {}", what, path), st.error());
        return false;
    }
    return true;
}

// --wait of blockcommit, blockpull, blockcopy: follows the job as
// wait_block_job does and says how a job that did not get through ended
// ("Commit failed", "Copy aborted"); true once it completed or is ready.
bool wait_job_ok(Session& s, const std::string& dom, const std::string& path, const Args& a, std::string_view what) {
    switch (wait_block_job(s, dom, path, a.has("verbose"), a.number("timeout"), a.has("async"))) {
    case JobEnd::Failed:
        s.error(fmt::format("\n{} failed", what));
        return false;
    case JobEnd::Cancelled:
        s.error(fmt::format("\n{} aborted", what));
        return false;
    case JobEnd::Ready:
    case JobEnd::Completed:
        break;
    }
    return true;
}

int cmd_blockcommit(Session& s, const Args& a) {
    const bool pivot = a.has("pivot"), keep = a.has("keep-overlay");
    if (pivot && keep) {
        s.error("Options --pivot and --keep-overlay are mutually exclusive");
        return 1;
    }
    const bool active = a.has("active") || pivot || keep;
    const bool blocking = a.has("wait") || pivot || keep;
    if (!check_wait_options(s, a, blocking)) return 1;
    auto bw = bandwidth_of(s, a);
    if (!bw) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string path = a.get("path");
    auto st = s.conn()->call<ops::DomainBlockCommit>({.ref = dom->name, .path = path, .base = a.get("base"), .top = a.get("top"),
                                                      .active = active, .shallow = a.has("shallow"),
                                                      .delete_images = a.has("delete"), .bandwidth = *bw});
    if (!st) {
        s.error(st.error().full_message());
        return 1;
    }
    if (!blocking) {
        s.info("{}\n", active ? "Active Block Commit started" : "Block Commit started");
        return 0;
    }
    if (!wait_job_ok(s, dom->name, path, a, "Commit")) return 1;
    if (!active) {
        s.info("\nCommit complete\n");
        return 0;
    }
    if (pivot) {
        if (!end_ready_job(s, dom->name, path, true, "pivot")) return 1;
        s.info("\nSuccessfully pivoted\n");
    } else if (keep) {
        if (!end_ready_job(s, dom->name, path, false, "finish")) return 1;
        s.info("\nCommit complete, overlay image kept\n");
    } else {
        s.info("\nNow in synchronized phase\n");
    }
    return 0;
}

int cmd_blockpull(Session& s, const Args& a) {
    const bool blocking = a.has("wait");
    if (!check_wait_options(s, a, blocking)) return 1;
    auto bw = bandwidth_of(s, a);
    if (!bw) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string path = a.get("path");
    auto st = s.conn()->call<ops::DomainBlockPull>({.ref = dom->name, .path = path, .base = a.get("base"), .bandwidth = *bw});
    if (!st) {
        s.error(st.error().full_message());
        return 1;
    }
    if (!blocking) {
        s.info("Block Pull started\n");
        return 0;
    }
    if (!wait_job_ok(s, dom->name, path, a, "Pull")) return 1;
    s.info("\nPull complete\n");
    return 0;
}

int cmd_blockcopy(Session& s, const Args& a) {
    const bool pivot = a.has("pivot"), finish = a.has("finish");
    if (pivot && finish) {
        s.error("Options --pivot and --finish are mutually exclusive");
        return 1;
    }
    const bool blocking = a.has("wait") || pivot || finish;
    if (!check_wait_options(s, a, blocking)) return 1;
    if (!a.has("dest")) {
        s.error("need either --dest or --xml");
        return 1;
    }
    auto bw = bandwidth_of(s, a);
    if (!bw) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string path = a.get("path");
    const std::string dest = std::filesystem::absolute(a.get("dest")).lexically_normal().string();  // the daemon has another cwd
    auto st = s.conn()->call<ops::DomainBlockCopy>({.ref = dom->name, .path = path, .dest = dest, .format = a.get("format"),
                                                    .shallow = a.has("shallow"), .reuse_external = a.has("reuse-external"),
                                                    .bandwidth = *bw});
    if (!st) {
        s.error(st.error().full_message());
        return 1;
    }
    if (!blocking) {
        s.info("Block Copy started\n");
        return 0;
    }
    if (!wait_job_ok(s, dom->name, path, a, "Copy")) return 1;
    if (pivot) {
        if (!end_ready_job(s, dom->name, path, true, "pivot")) return 1;
        s.info("\nSuccessfully pivoted\n");
    } else if (finish) {
        if (!end_ready_job(s, dom->name, path, false, "finish")) return 1;
        s.info("\nSuccessfully copied\n");
    } else {
        s.info("\nNow in mirroring phase\n");
    }
    return 0;
}

int cmd_blockjob(Session& s, const Args& a) {
    const bool abort = a.has("abort"), pivot = a.has("pivot"), info = a.has("info");
    const bool speed = a.has("bandwidth");
    if (int(abort) + int(pivot) + int(info) + int(speed) > 1) {
        s.error("Options --abort, --pivot, --info and --bandwidth are mutually exclusive");
        return 1;
    }
    if (a.has("async") && !abort && !pivot) {
        s.error("--async requires --abort or --pivot");
        return 1;
    }
    if ((a.has("raw") || a.has("bytes")) && (abort || pivot)) {
        s.error("--raw and --bytes require --info or --bandwidth");
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string path = a.get("path");
    if (abort || pivot) {
        auto st = s.conn()->call<ops::DomainBlockJobAbort>({.ref = dom->name, .path = path, .pivot = pivot, .async_end = a.has("async")});
        if (!st) {
            s.error(st.error().full_message());
            return 1;
        }
        return 0;
    }
    if (speed) {
        auto bw = bandwidth_of(s, a);
        if (!bw) return 1;
        auto st = s.conn()->call<ops::DomainBlockJobSetSpeed>({.ref = dom->name, .path = path, .bandwidth = *bw});
        if (!st) {
            s.error(st.error().full_message());
            return 1;
        }
        return 0;
    }
    auto params = s.conn()->call<ops::DomainBlockJobInfo>({.ref = dom->name, .path = path});
    if (!params) {
        s.error(params.error().full_message());
        return 1;
    }
    const BlockJobText t = format_block_job_info(block_job_view(*params), path, a.has("raw"), a.has("bytes"));
    if (!t.err.empty()) {
        std::fflush(stdout);
        fmt::print(stderr, "{}", t.err);
        std::fflush(stderr);
    }
    s.out("{}", t.out);
    return 0;
}

}  // namespace

void add_block_commands(std::vector<CommandSpec>& t) {
    const std::string_view mgmt = "Domain Management", mon = "Domain Monitoring";
    const OptSpec device{"device", OptType::String, "block device", false, true};
    const OptSpec human{"human", OptType::Bool, "Human readable output"};
    t.push_back({"domblkstat", mon, "get device block stats for a domain",
                 "Get device block stats for a running domain. See man page or use --human for explanation of fields",
                 {kDomainOpt, device, {"human", OptType::Bool, "print a more human readable output"}, kJsonOpt},
                 cmd_domblkstat});
    t.push_back({"domblkinfo", mon, "domain block device size information", "Get block device size info for a domain.",
                 {kDomainOpt, device, human, {"all", OptType::Bool, "display all block devices info"}, kJsonOpt},
                 cmd_domblkinfo});
    t.push_back({"blockresize", mgmt, "Resize block device of domain.", "Resize block device of domain.",
                 {kDomainOpt, {"path", OptType::String, "Fully-qualified path of block device", true, true},
                  {"size", OptType::String, "New size of the block device, as scaled integer (default KiB)", true, true},
                  {"bytes", OptType::Bool, "a size without a suffix is in bytes instead of KiB"}},
                 cmd_blockresize, true, true});
    const OptSpec path{"path", OptType::String, "fully-qualified path of disk", true, true};
    const OptSpec bandwidth{"bandwidth", OptType::String, "bandwidth limit in MiB/s"};
    const OptSpec bytes{"bytes", OptType::Bool, "the bandwidth limit is in bytes/s instead of MiB/s"};
    const OptSpec wait{"wait", OptType::Bool, "wait for job to complete (with --active, wait for job to sync)"};
    const OptSpec verbose{"verbose", OptType::Bool, "with --wait, display the progress"};
    const OptSpec timeout{"timeout", OptType::Number, "implies --wait, abort if copy exceeds timeout (in seconds)"};
    const OptSpec async{"async", OptType::Bool, "with --wait, don't wait for cancel to finish"};
    t.push_back({"blockcommit", mgmt, "Start a block commit operation.",
                 "Commit changes from a snapshot down to its backing image.",
                 {kDomainOpt, path, bandwidth,
                  {"base", OptType::String, "path of base file to commit into (default bottom of chain)"},
                  {"shallow", OptType::Bool, "use backing file of top as base"},
                  {"top", OptType::String, "path of top file to commit from (default top of chain)"},
                  {"active", OptType::Bool, "trigger two-stage active commit of top file"},
                  {"delete", OptType::Bool, "delete files that were successfully committed"}, wait, verbose, timeout,
                  {"pivot", OptType::Bool, "implies --active --wait, pivot when commit is synced"},
                  {"keep-overlay", OptType::Bool, "implies --active --wait, quit when commit is synced"}, async, bytes},
                 cmd_blockcommit, true, true});
    t.push_back({"blockpull", mgmt, "Populate a disk from its backing image.",
                 "Populate a disk from its backing image.",
                 {kDomainOpt, path, bandwidth,
                  {"base", OptType::String, "path of backing file in chain for a partial pull"},
                  {"wait", OptType::Bool, "wait for job to finish"}, verbose,
                  {"timeout", OptType::Number, "with --wait, abort if pull exceeds timeout (in seconds)"}, async, bytes},
                 cmd_blockpull, true, true});
    t.push_back({"blockcopy", mgmt, "Start a block copy operation.", "Copy a disk backing image chain to dest.",
                 {kDomainOpt, path, {"dest", OptType::String, "path of the copy to create", false, true}, bandwidth,
                  {"shallow", OptType::Bool, "make the copy share a backing chain"},
                  {"reuse-external", OptType::Bool, "reuse existing destination"},
                  {"wait", OptType::Bool, "wait for job to reach mirroring phase"}, verbose, timeout,
                  {"pivot", OptType::Bool, "implies --wait, pivot when mirroring starts"},
                  {"finish", OptType::Bool, "implies --wait, quit when mirroring starts"}, async,
                  {"format", OptType::String, "format of the destination file"}, bytes},
                 cmd_blockcopy, true, true});
    t.push_back({"blockjob", mgmt, "Manage active block operations",
                 "Query, adjust speed, or cancel active block operations.",
                 {kDomainOpt, path, {"abort", OptType::Bool, "abort the active job on the specified disk"},
                  {"async", OptType::Bool, "implies --abort; request but don't wait for job end"},
                  {"pivot", OptType::Bool, "implies --abort; conclude and pivot a copy or commit job"},
                  {"info", OptType::Bool, "get active job information for the specified disk"},
                  {"bytes", OptType::Bool, "get/set bandwidth in bytes rather than MiB/s"},
                  {"raw", OptType::Bool, "implies --info; output details rather than human summary"},
                  {"bandwidth", OptType::String, "set the bandwidth limit in MiB/s"}},
                 cmd_blockjob, true, false});  // --info is a query: the daemon refuses the rest on a read-only connection
}

}  // namespace vireo::cli
