// A running domain's screen and keyboard: domdisplay, vncdisplay (from its
// live XML, as virsh reads them), screenshot, send-key. Output and errors as
// virsh's.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
#include "conf/domain.hpp"
#include "driver/keycodes.hpp"
#include "driver/ops/domain.hpp"
#include "util/fd.hpp"
#include "util/number.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

// The live definition of a running domain, or nullopt after saying why.
std::optional<conf::DomainDef> running_definition(Session& s, const driver::DomainSummary& dom) {
    if (dom.id < 0) {
        s.error("Domain is not running");
        return std::nullopt;
    }
    auto xml = s.conn()->domain_xml(dom.name, false, true);  // passwords for --include-password
    if (!xml) {
        s.error(fmt::format("failed to get the XML of domain '{}'", dom.name), xml.error());
        return std::nullopt;
    }
    auto def = conf::parse_domain_xml(*xml, {.no_validate = true, .live = true});
    if (!def) {
        s.error(fmt::format("failed to read the XML of domain '{}'", dom.name), def.error());
        return std::nullopt;
    }
    return std::move(*def);
}

// Where a display listens, as virsh reads it: listen='...' or the first
// <listen address>; none, 0.0.0.0 and :: mean "localhost" for domdisplay.
std::string listen_address(const conf::Graphics& g) {
    if (!g.listen.empty()) return g.listen;
    for (const auto& l : g.listens)
        if (l.type == "address" && !l.address.empty()) return l.address;
    return "";
}

int port_of(const std::string& port) { return util::parse_number<int>(port).value_or(0); }

// The URI of one display, "" when it has nowhere to connect to.
std::string display_uri(const conf::Graphics& g, bool include_password) {
    const int port = port_of(g.port);
    const int tls_port = g.type == "spice" ? port_of(g.tls_port) : 0;
    std::string passwd = include_password ? g.passwd : std::string();
    if (port == 0 && tls_port == 0) {
        for (const auto& l : g.listens)
            if (l.type == "socket" && !l.socket.empty()) return fmt::format("{}+unix://{}", g.type, l.socket);
        return "";
    }
    std::string host = listen_address(g);
    if (host.empty() || host == "0.0.0.0" || host == "::") host = "localhost";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    std::string uri = g.type + "://";
    if (!passwd.empty()) uri += ":" + passwd + "@";
    uri += host;
    if (port > 0) uri += fmt::format(":{}", g.type == "vnc" ? port - 5900 : port);
    if (tls_port > 0) uri += fmt::format("?tls-port={}", tls_port);
    return uri;
}

int cmd_domdisplay(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto def = running_definition(s, *dom);
    if (!def) return 1;
    const std::string type = a.get("type");
    bool found = false;
    // virsh's order: VNC, then SPICE (then RDP, dbus, which vireo has not).
    for (std::string_view scheme : {"vnc", "spice"}) {
        if (!type.empty() && type != scheme) continue;
        for (const auto& g : def->devices.graphics) {
            if (g.type != scheme) continue;
            std::string uri = display_uri(g, a.has("include-password"));
            if (uri.empty()) continue;
            s.out("{}\n", uri);
            found = true;
            break;
        }
        if (found && !a.has("all")) break;
    }
    if (found && a.has("all")) s.out("\n");  // virsh ends the list with an empty line
    if (!found) {
        s.error(type.empty() ? std::string("No graphical display found")
                             : fmt::format("No graphical display with type '{}' found", type));
        return 1;
    }
    return 0;
}

int cmd_vncdisplay(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto def = running_definition(s, *dom);
    if (!def) return 1;
    for (const auto& g : def->devices.graphics) {
        if (g.type != "vnc" || g.port.empty()) continue;
        const std::string host = g.listen;
        if (host.empty() || host == "0.0.0.0") s.out(":{}\n\n", port_of(g.port) - 5900);
        else s.out("{}:{}\n\n", host, port_of(g.port) - 5900);
        return 0;
    }
    s.error("Failed to get VNC port. Is this domain using VNC?");
    return 1;
}

// virsh's file name for a screenshot: <domain>-<date>-<time>.<ext>.
std::string screenshot_file_name(const std::string& domain, const std::string& mime) {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[64];
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%d-%H:%M:%S", &tm);
    const char* ext = mime == "image/png" ? ".png" : mime == "image/x-portable-pixmap" ? ".ppm" : "";
    return fmt::format("{}-{}{}", domain, stamp, ext);
}

int cmd_screenshot(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::uint64_t screen = a.number("screen").value_or(0);
    auto shot = s.conn()->call<ops::DomainScreenshot>({.ref = dom->name, .screen = screen});
    if (!shot) {
        s.error(fmt::format("could not take a screenshot of {}", dom->name), shot.error());
        return 1;
    }
    const bool generated = !a.has("file");
    const std::string file = generated ? screenshot_file_name(dom->name, shot->mime) : a.get("file");
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
    if (!fd) {
        s.error(fmt::format("cannot create file {}", file));
        return 1;
    }
    std::string_view rest = shot->data;
    while (!rest.empty()) {
        const ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            s.error(fmt::format("cannot write to file {}", file));
            if (generated) ::unlink(file.c_str());
            return 1;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    s.out("Screenshot saved to {}, with type of {}\n", file, shot->mime);
    return 0;
}

// A key as virsh takes it: a number (decimal, 0x.. or 0..) or a name of the codeset.
std::optional<unsigned> parse_key(driver::KeyCodeset set, const std::string& word) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(word.c_str(), &end, 0);
    if (!word.empty() && end && *end == '\0' && errno == 0 && word[0] != '-' && v <= 0xffff) return static_cast<unsigned>(v);
    return driver::keycode_from_name(set, word);
}

int cmd_send_key(Session& s, const Args& a) {
    auto set = driver::keycodeset_from_name(a.get("codeset", "linux"));
    if (!set) {
        s.error(set.error().code == ErrorCode::InvalidArg ? set.error().message : set.error().full_message());
        return 1;
    }
    std::vector<unsigned> codes;
    for (const auto& word : a.rest) {
        if (codes.size() == driver::kMaxSendKeys) {
            s.error("too many keycodes");
            return 1;
        }
        auto code = parse_key(*set, word);
        if (!code) {
            s.error(fmt::format("invalid keycode: '{}'", word));
            return 1;
        }
        codes.push_back(*code);
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto r = s.conn()->call<ops::DomainSendKey>(
        {.ref = dom->name, .codeset = *set, .holdtime = a.number("holdtime").value_or(0), .keys = driver::join_keycodes(codes)});
    if (!r) {
        s.error(r.error().full_message());
        return 1;
    }
    s.out("\n");
    return 0;
}

}  // namespace

void add_display_commands(std::vector<CommandSpec>& t) {
    const std::string_view mgmt = "Domain Management";
    t.push_back({"domdisplay", mgmt, "domain display connection URI",
                 "Output the IP address and port number for the graphical display.",
                 {kDomainOpt, {"include-password", OptType::Bool, "includes the password into the connection URI if available"},
                  {"type", OptType::String, "select particular graphical display (e.g. \"vnc\", \"spice\", \"rdp\", \"dbus\")"},
                  {"all", OptType::Bool, "show all possible graphical displays"}},
                 cmd_domdisplay});
    t.push_back({"vncdisplay", mgmt, "vnc display", "Output the IP address and port number for the VNC display.", {kDomainOpt},
                 cmd_vncdisplay});
    t.push_back({"screenshot", mgmt, "take a screenshot of a current domain console and store it into a file",
                 "screenshot of a current domain console",
                 {kDomainOpt, {"file", OptType::String, "where to store the screenshot", false, true},
                  {"screen", OptType::Number, "ID of a screen to take screenshot of"}},
                 cmd_screenshot});
    t.push_back({"send-key", mgmt, "Send keycodes to the guest", "Send keycodes (integers or symbolic names) to the guest",
                 {kDomainOpt, {"codeset", OptType::String, "the codeset of keycodes, default:linux"},
                  {"holdtime", OptType::Number, "the time (in milliseconds) how long the keys will be held"},
                  {"keycode", OptType::Argv, "the key code", true, true}},
                 cmd_send_key, true, true});
}

}  // namespace vireo::cli
