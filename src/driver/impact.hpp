// Which definitions a change to a domain (or network) touches: libvirt's
// modification impact (VIR_DOMAIN_AFFECT_LIVE / _CONFIG / _CURRENT), the
// one rule behind every --live / --config / --current / --persistent option.
//
//   --current (neither live nor config) = live if running, else config;
//   --live on an object that does not run is an error ("domain is not
//     running");
//   --config on a transient object is an error;
//   --persistent (attach-device, attach-disk): config, and live too when
//     running;
//   --current together with --live or --config is an error, as virsh's.
#pragma once

#include <string_view>

#include "util/error.hpp"

namespace vireo::driver {

// What the caller asked for (the verb's options).
struct ImpactFlags {
    bool live = false;
    bool config = false;
    bool current = false;
    bool persistent = false;
};

// What the change touches, resolved.
struct Impact {
    bool live = false;
    bool config = false;
};

// `what` names the object in errors: "domain", "network".
Result<Impact> resolve_impact(ImpactFlags flags, bool running, bool persistent, std::string_view what = "domain");

}  // namespace vireo::driver
