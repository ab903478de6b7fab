// Job verbs: virsh's domjobinfo and domjobabort (a domain's async job:
// save, restore, managedsave), and vireo's job-list and job-abort, which see
// every async job of the connection by id, the volume jobs (vol-clone,
// vol-upload, vol-download, vol-wipe) included, so that another client can
// stop them.
#include "cli/vireo/commands.hpp"
#include "cli/vireo/job_format.hpp"
#include "cli/vireo/session.hpp"

namespace vireo::cli {

namespace {

namespace ops = driver::ops;

int cmd_domjobinfo(Session& s, const Args& a) {
    const bool completed = a.has("completed");
    if (a.has("keep-completed") && !completed) {
        s.error("Option --completed is required by option --keep-completed");
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto info = s.conn()->call<ops::DomainJobInfo>(
        {.ref = dom->name, .completed = completed, .keep_completed = a.has("keep-completed")});
    if (!info) {
        s.error(info.error().full_message());
        return 1;
    }
    if (a.has("json"))
        s.out("{}\n", job_json(*info).dump(2));
    else if (a.has("rawstats"))
        s.out("{}", format_job_raw(*info));
    else
        s.out("{}", format_job_info(*info, completed, a.has("anystats")));
    return 0;
}

int cmd_domjobabort(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    if (auto st = s.conn()->call<ops::DomainAbortJob>({.ref = dom->name}); !st) {
        s.error(st.error().full_message());
        return 1;
    }
    s.info("\n");
    return 0;
}

int cmd_job_list(Session& s, const Args& a) {
    auto* d = s.conn();
    if (!d) return 1;
    auto jobs = d->call<ops::JobList>({});
    if (!jobs) {
        s.error("failed to list jobs", jobs.error());
        return 1;
    }
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& j : *jobs) out.push_back(job_json(j));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    s.out("{}\n", format_job_list(*jobs, !s.quiet()));
    return 0;
}

int cmd_job_abort(Session& s, const Args& a) {
    auto* d = s.conn();
    if (!d) return 1;
    const std::string id = a.get("id");
    if (auto st = d->call<ops::JobAbort>({.id = id}); !st) {
        s.error(fmt::format("Failed to abort job {}", id), st.error());
        return 1;
    }
    s.info("Job {} aborted\n\n", id);
    return 0;
}

}  // namespace

void add_job_commands(std::vector<CommandSpec>& t) {
    const std::string_view g = "Domain Management";
    t.push_back({"domjobinfo", g, "domain job information", "Returns information about jobs running on a domain.",
                 {kDomainOpt,
                  {"completed", OptType::Bool, "return statistics of a recently completed job"},
                  {"keep-completed", OptType::Bool, "don't destroy statistics of a recently completed job when reading"},
                  {"anystats", OptType::Bool, "print statistics for any kind of job (even failed ones)"},
                  {"rawstats", OptType::Bool, "print the raw data returned by libvirt"},
                  kJsonOpt},
                 cmd_domjobinfo});
    t.push_back({"domjobabort", g, "abort active domain job", "Aborts the currently running domain job", {kDomainOpt},
                 cmd_domjobabort, true, true});
    const std::string_view h = "Host and Hypervisor";
    t.push_back({"job-list", h, "list the running jobs",
                 "List every async job running on the connection: domain jobs (save,\nrestore, managedsave) and "
                 "volume jobs (vol-clone, vol-upload,\nvol-download, vol-wipe), with the id job-abort takes.",
                 {kJsonOpt}, cmd_job_list});
    t.push_back({"job-abort", h, "abort a running job",
                 "Abort the running job with this id (job-list shows them). The client\nthat started it gets "
                 "'operation aborted: job ... canceled by client'.",
                 {{"id", OptType::String, "the job's id", true, true}}, cmd_job_abort, true, true});
}

}  // namespace vireo::cli
