#include "security/dac.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <climits>

#include <fmt/ranges.h>

#include "util/fd.hpp"
#include "util/files.hpp"

namespace vireo::security {

namespace {

// "+N" or "N" as a number; nullopt when it is not one.
std::optional<unsigned long> id_number(std::string_view s) {
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
    unsigned long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v >= 0x80000000UL) return std::nullopt;
    return v;
}

bool host_knows_id(uid_t id) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* pwp = nullptr;
    if (::getpwuid_r(id, &pw, buf.data(), buf.size(), &pwp) == 0 && pwp) return true;
    group gr{};
    group* grp = nullptr;
    return ::getgrgid_r(id, &gr, buf.data(), buf.size(), &grp) == 0 && grp;
}

struct User {
    uid_t uid;
    gid_t gid;
    std::string name;
};

Result<User> lookup_user(std::string_view name) {
    if (auto n = id_number(name); n && (name.front() == '+' || std::isdigit(static_cast<unsigned char>(name.front()))))
        return User{static_cast<uid_t>(*n), static_cast<gid_t>(*n), ""};
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* pwp = nullptr;
    const std::string n(name);
    if (::getpwnam_r(n.c_str(), &pw, buf.data(), buf.size(), &pwp) != 0 || !pwp)
        return fail(ErrorCode::NotFound, "user '{}' does not exist on this host", name);
    return User{pw.pw_uid, pw.pw_gid, n};
}

Result<gid_t> lookup_group(std::string_view name) {
    if (auto n = id_number(name); n && (name.front() == '+' || std::isdigit(static_cast<unsigned char>(name.front()))))
        return static_cast<gid_t>(*n);
    std::vector<char> buf(16384);
    group gr{};
    group* grp = nullptr;
    const std::string n(name);
    if (::getgrnam_r(n.c_str(), &gr, buf.data(), buf.size(), &grp) != 0 || !grp)
        return fail(ErrorCode::NotFound, "group '{}' does not exist on this host", name);
    return gr.gr_gid;
}

}  // namespace

std::string label_text(const Identity& id) { return fmt::format("+{}:+{}", id.uid, id.gid); }

Result<Identity> parse_dac_label(std::string_view label) {
    if (label.empty()) return fail(ErrorCode::InvalidArg, "empty DAC label (expected +UID:+GID or user:group)");
    const auto colon = label.find(':');
    auto user = lookup_user(label.substr(0, colon));
    if (!user) return std::unexpected(user.error());
    Identity id{user->uid, user->gid, {}};
    if (colon != std::string_view::npos) {
        auto gid = lookup_group(label.substr(colon + 1));
        if (!gid) return std::unexpected(gid.error());
        id.gid = *gid;
    }
    if (!user->name.empty()) {
        // A named account keeps its supplementary groups (as libvirt's user= does).
        int n = 64;
        std::vector<gid_t> groups(static_cast<std::size_t>(n));
        if (::getgrouplist(user->name.c_str(), id.gid, groups.data(), &n) < 0) {
            groups.resize(static_cast<std::size_t>(n));
            if (::getgrouplist(user->name.c_str(), id.gid, groups.data(), &n) < 0) n = 0;
        }
        groups.resize(static_cast<std::size_t>(n));
        std::erase(groups, id.gid);
        id.groups = std::move(groups);
    }
    return id;
}

namespace {

bool is_number_label(const std::string& s) { return !s.empty() && (s.front() == '+' || std::isdigit(static_cast<unsigned char>(s.front()))); }

Status run_tool(std::vector<std::string> argv) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    if (int err = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ); err != 0)
        return std::unexpected(errno_error(fmt::format("cannot run {}", argv[0]), err));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(ErrorCode::OperationFailed, "'{}' failed (exit status {})", fmt::join(argv, " "),
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return {};
}

}  // namespace

Result<Identity> ensure_account(const std::string& user, const std::string& group) {
    if (user.empty()) return fail(ErrorCode::InvalidArg, "qemu.conf: group = \"{}\" needs a user too", group);
    if (!group.empty() && !is_number_label(group) && !lookup_group(group) && group != user)
        VIREO_TRY(run_tool({"groupadd", "--system", group}));
    if (!is_number_label(user) && !lookup_user(user)) {
        std::vector<std::string> argv = {"useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                         "--shell", "/usr/sbin/nologin", "--comment", "vireo QEMU guests"};
        if (group.empty() || group == user) {
            if (!lookup_group(user)) argv.emplace_back("--user-group");
            else argv.insert(argv.end(), {"--gid", user});
        } else {
            argv.insert(argv.end(), {"--gid", group});
        }
        argv.push_back(user);
        VIREO_TRY(run_tool(std::move(argv)));
    }
    return parse_dac_label(group.empty() ? user : user + ":" + group);
}

Result<IdRange> parse_id_range(std::string_view text) {
    const auto dash = text.find('-');
    std::optional<unsigned long> first, last;
    if (dash != std::string_view::npos) {
        first = id_number(text.substr(0, dash));
        last = id_number(text.substr(dash + 1));
    }
    if (!first || !last || *first == 0 || *first > *last)
        return fail(ErrorCode::InvalidArg, "'{}' is not an id range FIRST-LAST (e.g. {}, not starting at 0)", text,
                    kDefaultIdRange);
    return IdRange{static_cast<uid_t>(*first), static_cast<uid_t>(*last)};
}

IdAllocator::IdAllocator(IdRange range, std::function<bool(uid_t)> host_has)
    : range_(range), host_has_(host_has ? std::move(host_has) : std::function<bool(uid_t)>(host_knows_id)) {}

Result<uid_t> IdAllocator::allocate(const std::string& owner) {
    std::lock_guard lk(mutex_);
    for (unsigned long id = range_.first; id <= range_.last; ++id) {
        const auto uid = static_cast<uid_t>(id);
        if (held_.contains(uid) || host_has_(uid)) continue;
        held_[uid] = owner;
        return uid;
    }
    return fail(ErrorCode::Unsupported, "every id of the guest id range {}-{} is in use (guest_id_range in qemu.conf)",
                range_.first, range_.last);
}

bool IdAllocator::reserve(uid_t id, const std::string& owner) {
    std::lock_guard lk(mutex_);
    auto [it, added] = held_.emplace(id, owner);
    return added || it->second == owner;
}

void IdAllocator::release(uid_t id) {
    std::lock_guard lk(mutex_);
    held_.erase(id);
}

std::optional<std::string> IdAllocator::owner_of(uid_t id) const {
    std::lock_guard lk(mutex_);
    auto it = held_.find(id);
    if (it == held_.end()) return std::nullopt;
    return it->second;
}

std::string format_owner_journal(const OwnerJournal& journal) {
    std::string out = fmt::format("given {} {}\n", journal.given_uid, journal.given_gid);
    for (const auto& r : journal.records) out += fmt::format("{} {} {}\n", r.uid, r.gid, r.path);
    return out;
}

Result<OwnerJournal> parse_owner_journal(std::string_view text) {
    OwnerJournal out;
    bool header = false;
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.empty()) continue;
        auto bad = [&] { return fail(ErrorCode::Corrupt, "owner journal line {}: '{}'", line_no, line); };
        std::string_view rest = line;
        const bool is_header = rest.starts_with("given ");
        if (is_header) rest.remove_prefix(6);
        const auto sp1 = rest.find(' ');
        if (sp1 == std::string_view::npos) return bad();
        const auto sp2 = rest.find(' ', sp1 + 1);
        auto uid = id_number(rest.substr(0, sp1));
        auto gid = id_number(rest.substr(sp1 + 1, sp2 == std::string_view::npos ? std::string_view::npos : sp2 - sp1 - 1));
        if (!uid || !gid) return bad();
        if (is_header) {
            if (header || sp2 != std::string_view::npos) return bad();
            header = true;
            out.given_uid = static_cast<uid_t>(*uid);
            out.given_gid = static_cast<gid_t>(*gid);
            continue;
        }
        if (!header || sp2 == std::string_view::npos || sp2 + 1 >= rest.size() || rest[sp2 + 1] != '/') return bad();
        out.records.push_back({std::string(rest.substr(sp2 + 1)), static_cast<uid_t>(*uid), static_cast<gid_t>(*gid)});
    }
    if (!header) return fail(ErrorCode::Corrupt, "owner journal without its 'given' line");
    return out;
}

Status give_files(const std::vector<std::string>& paths, const Identity& id, const std::filesystem::path& journal) {
    OwnerJournal j{id.uid, id.gid, {}};
    if (auto text = files::read(journal)) {
        auto old = parse_owner_journal(*text);
        if (!old) return std::unexpected(old.error().context(fmt::format("'{}'", journal.string())));
        if (old->given_uid != id.uid || old->given_gid != id.gid)
            return fail(ErrorCode::InvalidState, "'{}' records files given to +{}:+{}, not {}", journal.string(),
                        old->given_uid, old->given_gid, label_text(id));
        j = std::move(*old);
    }
    std::vector<OwnerRecord> added;
    for (const auto& p : paths) {
        if (p.find('\n') != std::string::npos)
            return fail(ErrorCode::InvalidArg, "'{}': a path with a line break cannot be given to the QEMU user", p);
        bool known = false;
        for (const auto& r : j.records) known = known || r.path == p;
        for (const auto& r : added) known = known || r.path == p;
        if (known) continue;
        struct stat st{};
        if (::stat(p.c_str(), &st) != 0) return fail_errno(fmt::format("cannot give '{}' to the QEMU user {}", p, label_text(id)));
        if (st.st_uid == id.uid && st.st_gid == id.gid) continue;
        added.push_back({p, st.st_uid, st.st_gid});
    }
    if (added.empty()) return {};
    const std::size_t before = j.records.size();
    j.records.insert(j.records.end(), added.begin(), added.end());
    VIREO_TRY(files::write_atomic(journal, format_owner_journal(j), 0600));
    for (std::size_t i = 0; i < added.size(); ++i) {
        if (::chown(added[i].path.c_str(), id.uid, id.gid) == 0) continue;
        Error e = errno_error(fmt::format("cannot give '{}' to the QEMU user {}", added[i].path, label_text(id)), errno);
        for (std::size_t k = 0; k < i; ++k) (void)::chown(added[k].path.c_str(), added[k].uid, added[k].gid);
        j.records.resize(before);
        if (j.records.empty()) (void)files::remove_durable(journal);
        else (void)files::write_atomic(journal, format_owner_journal(j), 0600);
        return std::unexpected(e);
    }
    return {};
}

Status restore_files(const std::filesystem::path& journal) {
    auto text = files::read(journal);
    if (!text) {
        if (text.error().code == ErrorCode::NotFound) return {};
        return std::unexpected(text.error());
    }
    auto j = parse_owner_journal(*text);
    if (!j) return std::unexpected(j.error().context(fmt::format("'{}'", journal.string())));
    std::vector<OwnerRecord> left;
    std::string failures;
    for (const auto& r : j->records) {
        struct stat st{};
        if (::stat(r.path.c_str(), &st) != 0) continue;  // gone: nothing to give back
        if (st.st_uid != j->given_uid || st.st_gid != j->given_gid) continue;  // changed by someone since
        if (::chown(r.path.c_str(), r.uid, r.gid) == 0) continue;
        const int err = errno;
        failures += fmt::format("{}'{}' ({})", failures.empty() ? "" : ", ", r.path, std::strerror(err));
        left.push_back(r);
    }
    if (!left.empty()) {
        j->records = std::move(left);
        (void)files::write_atomic(journal, format_owner_journal(*j), 0600);
        return fail(ErrorCode::System, "cannot give back to their owners: {}", failures);
    }
    return files::remove_durable(journal);
}

Status check_access(const Identity& id, const std::vector<AccessNeed>& needs) {
    if (needs.empty()) return {};
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    std::vector<const char*> paths;
    std::vector<int> modes;
    for (const auto& n : needs) {
        paths.push_back(n.path.c_str());
        modes.push_back(R_OK | (n.write ? W_OK : 0));
    }
    const pid_t child = ::fork();
    if (child < 0) return fail_errno("fork");
    if (child == 0) {
        // Async-signal-safe calls only: the daemon is multi-threaded.
        int result[2] = {-1, 0};
        if (::setgroups(id.groups.size(), id.groups.data()) != 0 || ::setgid(id.gid) != 0 || ::setuid(id.uid) != 0) {
            result[1] = errno;
        } else {
            for (std::size_t i = 0; i < paths.size(); ++i) {
                if (::access(paths[i], modes[i]) == 0) continue;
                result[0] = static_cast<int>(i);
                result[1] = errno;
                break;
            }
        }
        write_fully(wr.get(), result, sizeof result);
        ::_exit(0);
    }
    wr.reset();
    int result[2] = {-1, -1};
    ssize_t got = 0;
    do {
        got = ::read(rd.get(), result, sizeof result);
    } while (got < 0 && errno == EINTR);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (got != static_cast<ssize_t>(sizeof result))
        return fail(ErrorCode::System, "the access check as {} died", label_text(id));
    if (result[0] < 0 && result[1] != 0)
        return std::unexpected(errno_error(fmt::format("cannot take the identity {}", label_text(id)), result[1]));
    if (result[0] < 0) return {};
    const auto& n = needs[static_cast<std::size_t>(result[0])];
    return std::unexpected(errno_error(fmt::format("{}: the QEMU user {} cannot open '{}' for {}", n.what,
                                                   label_text(id), n.path, n.write ? "writing" : "reading"),
                                       result[1]));
}

}  // namespace vireo::security
