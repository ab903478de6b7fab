// change-media: eject, insert or update a cdrom or floppy medium, as virsh's
// (flags --eject/--insert/--update, --live/--config/--current, --force).
#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
#include "driver/ops/domain.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

int cmd_change_media(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const int actions = int{a.has("eject")} + int{a.has("insert")} + int{a.has("update")};
    if (actions > 1) {
        s.error("Options --eject, --insert and --update are mutually exclusive");
        return 1;
    }
    if (a.has("current") && (a.has("live") || a.has("config"))) {
        s.error("Options --current and --live/--config are mutually exclusive");
        return 1;
    }
    const std::string action = a.has("eject") ? "eject" : a.has("insert") ? "insert" : "update";
    const std::string source = a.has("source") ? a.get("source") : "";
    if (action == "eject" && !source.empty()) {
        s.error("Option --eject does not take a source");
        return 1;
    }
    auto st = s.conn()->call<ops::DomainChangeMedia>({.ref = dom->name, .path = a.get("path"), .action = action, .source = source,
                                                      .live = a.has("live"), .config = a.has("config"), .force = a.has("force")});
    if (!st) {
        s.error(fmt::format("Failed to complete action {} on media", action), st.error());
        return 1;
    }
    s.out("{}\n", action == "eject" ? "Successfully ejected media." : action == "insert" ? "Successfully inserted media." : "Successfully updated media.");
    return 0;
}

}  // namespace

void add_media_commands(std::vector<CommandSpec>& t) {
    t.push_back({"change-media", "Domain Management", "Change media of CD or floppy drive",
                 "Change media of CD or floppy drive.",
                 {kDomainOpt, {"path", OptType::String, "Fully-qualified path or target of disk device", true, true},
                  {"source", OptType::String, "source of the media", false, true},
                  {"eject", OptType::Bool, "Eject the media"},
                  {"insert", OptType::Bool, "Insert the media"},
                  {"update", OptType::Bool, "Update the media"},
                  {"current", OptType::Bool, "can be either or both of --live and --config, depends on implementation hypervisor driver"},
                  {"live", OptType::Bool, "alter live configuration of running domain"},
                  {"config", OptType::Bool, "alter persistent configuration, effect observed on next boot"},
                  {"force", OptType::Bool, "force media changing"}},
                 cmd_change_media, true, true});
}

}  // namespace vireo::cli
