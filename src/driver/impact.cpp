#include "driver/impact.hpp"

namespace vireo::driver {

Result<Impact> resolve_impact(ImpactFlags flags, bool running, bool persistent, std::string_view what) {
    if (flags.current && (flags.live || flags.config))
        return fail(ErrorCode::InvalidArg, "--current is exclusive with --live and --config");
    Impact out{flags.live, flags.config};
    if (flags.persistent) {
        out.config = true;
        out.live = out.live || running;
    }
    if (!out.live && !out.config) {
        out.live = running;
        out.config = !running;
    }
    if (out.live && !running)
        return fail(ErrorCode::InvalidState, "Requested operation is not valid: {} is not running", what);
    if (out.config && !persistent)
        return fail(ErrorCode::InvalidState, "Requested operation is not valid: cannot change persistent config of a transient {}",
                    what);
    return out;
}

}  // namespace vireo::driver
