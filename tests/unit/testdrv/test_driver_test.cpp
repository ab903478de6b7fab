#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <string>
#include <vector>

#include "testdrv/test_driver.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::driver;
using namespace vireo::testdrv;
namespace fs = std::filesystem;

namespace {

constexpr const char* kTestUuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";

std::string domain_xml(const std::string& name, const std::string& uuid = {}) {
    std::string x = "<domain type='qemu'>\n  <name>" + name + "</name>\n";
    if (!uuid.empty()) x += "  <uuid>" + uuid + "</uuid>\n";
    x += R"(  <memory unit='KiB'>524288</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/images/)" +
         name + R"(.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'>
      <target port='0'/>
    </serial>
  </devices>
</domain>
)";
    return x;
}

// Records "<Event>/<detail> <domain>" strings.
struct EventLog {
    std::vector<std::string> seen;
    std::unique_ptr<Subscription> sub;
    explicit EventLog(Driver& d) {
        auto s = d.subscribe([this](const DomainEvent& e) {
            seen.push_back(fmt::format("{}/{} {}", event_name(e.type), e.detail, e.domain));
        });
        EXPECT_TRUE(s);
        sub = std::move(*s);
    }
    std::vector<std::string> take() { return std::exchange(seen, {}); }
};

DomainSummary info(Driver& d, std::string_view ref) {
    auto s = d.lookup_domain(ref);
    EXPECT_TRUE(s) << s.error().message;
    return s ? *s : DomainSummary{};
}

std::string read_line(int fd) {
    std::string out;
    char c;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) return out + "<timeout>";
        if (::recv(fd, &c, 1, 0) != 1) return out + "<eof>";
        if (c == '\n') return out;
        out += c;
    }
}

}  // namespace

TEST(TestDriver, SampleHostAndTestDomain) {
    auto d = make_test_driver();
    EXPECT_EQ(d->uri(), "test:///default");
    auto node = d->node_info();
    ASSERT_TRUE(node);
    EXPECT_EQ(node->model, "x86_64");
    EXPECT_EQ(node->cpus, 8u);
    EXPECT_EQ(node->sockets * node->cores * node->threads * node->nodes, 8u);
    EXPECT_EQ(node->mhz, 1400u);
    EXPECT_EQ(node->memory_kib, 3145728u);
    auto ver = d->version();
    ASSERT_TRUE(ver);
    EXPECT_EQ(ver->hypervisor, "Test 1.0");
    EXPECT_FALSE(ver->library.empty());
    auto host = d->hostname();
    ASSERT_TRUE(host);
    EXPECT_FALSE(host->empty());
    auto caps = d->capabilities_xml();
    ASSERT_TRUE(caps);
    EXPECT_NE(caps->find("<arch>x86_64</arch>"), std::string::npos);
    EXPECT_NE(caps->find("<domain type='qemu'/>"), std::string::npos);
    auto dcaps = d->domain_capabilities_xml("", "", "", "");
    ASSERT_TRUE(dcaps);
    EXPECT_NE(dcaps->find("<domain>qemu</domain>"), std::string::npos);
    auto kvm = d->domain_capabilities_xml("", "", "", "kvm");
    ASSERT_FALSE(kvm);
    EXPECT_EQ(kvm.error().code, ErrorCode::Unsupported);

    auto list = d->list_domains();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    const auto& t = list->front();
    EXPECT_EQ(t.name, "test");
    EXPECT_EQ(t.id, 1);
    EXPECT_EQ(t.uuid.str(), kTestUuid);
    EXPECT_EQ(t.state, DomainState::Running);
    EXPECT_EQ(t.reason, "booted");
    EXPECT_TRUE(t.persistent);
    EXPECT_EQ(t.max_memory_kib, 8388608u);
    EXPECT_EQ(t.memory_kib, 2097152u);
    EXPECT_EQ(t.vcpus, 2u);
    EXPECT_EQ(t.os_type, "hvm");
    // The same domain by uuid and by id.
    EXPECT_EQ(info(*d, kTestUuid).name, "test");
    EXPECT_EQ(info(*d, "1").name, "test");

    auto disks = d->domain_disks("test", false);
    ASSERT_TRUE(disks);
    ASSERT_EQ(disks->size(), 1u);
    EXPECT_EQ((*disks)[0].target, "vda");
    EXPECT_EQ((*disks)[0].source, "/guest/diskimage1");
    auto nics = d->domain_interfaces("test", false);
    ASSERT_TRUE(nics);
    ASSERT_EQ(nics->size(), 1u);
    EXPECT_EQ((*nics)[0].type, "network");
    EXPECT_EQ((*nics)[0].source, "default");
    EXPECT_EQ((*nics)[0].mac, "aa:bb:cc:dd:ee:ff");
    auto xml = d->domain_xml("test", false);
    ASSERT_TRUE(xml);
    EXPECT_NE(xml->find("<name>test</name>"), std::string::npos);
}

TEST(TestDriver, InstancesAreIndependent) {
    auto a = make_test_driver();
    auto b = make_test_driver();
    ASSERT_TRUE(a->destroy_domain("test", {}));
    EXPECT_EQ(info(*a, "test").state, DomainState::Shutoff);
    EXPECT_EQ(info(*b, "test").state, DomainState::Running);
}

TEST(TestDriver, FullLifecycleStatesReasonsAndEvents) {
    auto d = make_test_driver();
    EventLog log(*d);

    auto def = d->define_domain(domain_xml("web"), true);
    ASSERT_TRUE(def) << def.error().full_message();
    EXPECT_EQ(def->state, DomainState::Shutoff);
    EXPECT_EQ(def->id, -1);
    EXPECT_FALSE(def->uuid.is_null());  // generated when the XML has none

    ASSERT_TRUE(d->start_domain("web", {}));
    auto s = info(*d, "web");
    EXPECT_EQ(s.state, DomainState::Running);
    EXPECT_EQ(s.reason, "booted");
    EXPECT_EQ(s.id, 2);  // "test" has id 1

    ASSERT_TRUE(d->suspend_domain("web"));
    s = info(*d, "web");
    EXPECT_EQ(s.state, DomainState::Paused);
    EXPECT_EQ(s.reason, "user");

    ASSERT_TRUE(d->resume_domain("web"));
    s = info(*d, "web");
    EXPECT_EQ(s.state, DomainState::Running);
    EXPECT_EQ(s.reason, "unpaused");

    ASSERT_TRUE(d->shutdown_domain("web", ShutdownMode::Default));
    s = info(*d, "web");
    EXPECT_EQ(s.state, DomainState::Shutoff);
    EXPECT_EQ(s.reason, "shutdown");
    EXPECT_EQ(s.id, -1);

    ASSERT_TRUE(d->start_domain("web", {}));
    EXPECT_EQ(info(*d, "web").id, 3);  // ids are never reused
    ASSERT_TRUE(d->destroy_domain("web", {}));
    s = info(*d, "web");
    EXPECT_EQ(s.state, DomainState::Shutoff);
    EXPECT_EQ(s.reason, "destroyed");

    StartFlags paused;
    paused.paused = true;
    ASSERT_TRUE(d->start_domain("web", paused));
    EXPECT_EQ(info(*d, "web").state, DomainState::Paused);
    ASSERT_TRUE(d->destroy_domain("web", {}));

    ASSERT_TRUE(d->undefine_domain("web", {}));
    EXPECT_FALSE(d->lookup_domain("web"));

    EXPECT_EQ(log.take(), (std::vector<std::string>{
                              "Defined/Added web",
                              "Started/Booted web",
                              "Suspended/Paused web",
                              "Resumed/Unpaused web",
                              "Shutdown/Finished web",
                              "Stopped/Shutdown web",
                              "Started/Booted web",
                              "Stopped/Destroyed web",
                              "Started/Booted web",
                              "Suspended/Paused web",
                              "Stopped/Destroyed web",
                              "Undefined/Removed web",
                          }));
}

TEST(TestDriver, ErrorMessagesForInvalidTransitions) {
    auto d = make_test_driver();
    auto missing = d->start_domain("nosuch", {});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NoDomain);
    EXPECT_EQ(missing.error().message, "Domain not found: no domain with matching name 'nosuch'");

    auto again = d->start_domain("test", {});
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::InvalidState);
    EXPECT_EQ(again.error().message, "Requested operation is not valid: domain 'test' is already running");

    auto not_paused = d->resume_domain("test");
    ASSERT_FALSE(not_paused);
    EXPECT_EQ(not_paused.error().message, "Requested operation is not valid: domain 'test' is not paused");

    ASSERT_TRUE(d->destroy_domain("test", {}));
    for (auto r : {d->destroy_domain("test", {}), d->suspend_domain("test"), d->shutdown_domain("test", {}),
                   d->reboot_domain("test", {}), d->save_domain("test", "/tmp/never"), d->managed_save("test")}) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ErrorCode::InvalidState);
        EXPECT_EQ(r.error().message, "Requested operation is not valid: domain 'test' is not running");
    }
    auto console = d->open_console("test", "");
    ASSERT_FALSE(console);
    EXPECT_EQ(console.error().code, ErrorCode::InvalidState);

    auto dup = d->define_domain(domain_xml("test", "11111111-2222-3333-4444-555555555555"), false);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, ErrorCode::Exists);
    EXPECT_EQ(dup.error().message, std::string("domain 'test' already exists with uuid ") + kTestUuid);

    auto bad = d->define_domain("<domain><name>x", false);
    ASSERT_FALSE(bad);
}

TEST(TestDriver, RedefineRunningDomainAffectsNextBootOnly) {
    auto d = make_test_driver();
    auto xml = d->domain_xml("test", true);
    ASSERT_TRUE(xml);
    std::string changed = *xml;
    const auto pos = changed.find("<vcpu");
    ASSERT_NE(pos, std::string::npos);
    const auto end = changed.find("</vcpu>", pos);
    changed.replace(pos, end - pos, "<vcpu placement='static'>4");
    EventLog log(*d);
    ASSERT_TRUE(d->define_domain(changed, true));
    EXPECT_EQ(log.take(), std::vector<std::string>{"Defined/Updated test"});
    EXPECT_EQ(info(*d, "test").vcpus, 2u);  // live definition unchanged
    auto inactive = d->domain_xml("test", true);
    ASSERT_TRUE(inactive);
    EXPECT_NE(inactive->find(">4</vcpu>"), std::string::npos);
    ASSERT_TRUE(d->destroy_domain("test", {}));
    ASSERT_TRUE(d->start_domain("test", {}));
    EXPECT_EQ(info(*d, "test").vcpus, 4u);
}

TEST(TestDriver, TransientCreateDisappearsWhenStopped) {
    auto d = make_test_driver();
    EventLog log(*d);
    auto created = d->create_domain(domain_xml("tmp"), {});
    ASSERT_TRUE(created) << created.error().full_message();
    EXPECT_EQ(created->state, DomainState::Running);
    EXPECT_FALSE(created->persistent);
    auto autostart = d->set_autostart("tmp", true);
    ASSERT_FALSE(autostart);
    EXPECT_NE(autostart.error().message.find("transient"), std::string::npos);
    auto undefine = d->undefine_domain("tmp", {});
    ASSERT_FALSE(undefine);
    EXPECT_NE(undefine.error().message.find("cannot undefine transient domain"), std::string::npos);
    ASSERT_TRUE(d->destroy_domain("tmp", {}));
    auto gone = d->lookup_domain("tmp");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::NoDomain);
    EXPECT_EQ(log.take(), (std::vector<std::string>{"Started/Booted tmp", "Stopped/Destroyed tmp"}));
}

TEST(TestDriver, UndefineRunningDomainMakesItTransient) {
    auto d = make_test_driver();
    ASSERT_TRUE(d->undefine_domain("test", {}));
    auto s = info(*d, "test");
    EXPECT_FALSE(s.persistent);
    EXPECT_EQ(s.state, DomainState::Running);
    ASSERT_TRUE(d->shutdown_domain("test", {}));
    EXPECT_FALSE(d->lookup_domain("test"));
}

TEST(TestDriver, SaveAndRestoreThroughAFile) {
    test::TempDir dir;
    auto d = make_test_driver();
    ASSERT_TRUE(d->suspend_domain("test"));
    EventLog log(*d);
    const std::string path = (dir / "test.save").string();
    ASSERT_TRUE(d->save_domain("test", path));
    auto s = info(*d, "test");
    EXPECT_EQ(s.state, DomainState::Shutoff);
    EXPECT_EQ(s.reason, "saved");
    auto image = files::read(path);
    ASSERT_TRUE(image);
    EXPECT_NE(image->find("<name>test</name>"), std::string::npos);

    auto restored = d->restore_domain(path, false);
    ASSERT_TRUE(restored) << restored.error().full_message();
    EXPECT_EQ(restored->name, "test");
    // It was paused when saved, so it comes back paused.
    EXPECT_EQ(restored->state, DomainState::Paused);
    ASSERT_TRUE(d->resume_domain("test"));
    EXPECT_EQ(log.take(), (std::vector<std::string>{"Stopped/Saved test", "Started/Restored test",
                                                    "Suspended/Paused test", "Resumed/Unpaused test"}));

    auto twice = d->restore_domain(path, false);  // already running
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error().code, ErrorCode::InvalidState);

    const std::string junk = (dir / "junk").string();
    ASSERT_TRUE(files::write_atomic(junk, "hello"));
    auto bad = d->restore_domain(junk, false);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("not a save image"), std::string::npos);
    auto none = d->restore_domain((dir / "none").string(), false);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, ErrorCode::NotFound);
}

TEST(TestDriver, RunningRestoreWithState) {
    test::TempDir dir;
    auto d = make_test_driver();
    const std::string path = (dir / "s").string();
    ASSERT_TRUE(d->save_domain("test", path));
    auto r = d->restore_domain(path, false);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->state, DomainState::Running);
    EXPECT_EQ(r->reason, "restored");
    EXPECT_TRUE(r->persistent);
}

TEST(TestDriver, ManagedSaveIsUsedByNextStart) {
    auto d = make_test_driver();
    EventLog log(*d);
    ASSERT_TRUE(d->managed_save("test"));
    auto s = info(*d, "test");
    EXPECT_EQ(s.state, DomainState::Shutoff);
    EXPECT_EQ(s.reason, "saved");
    EXPECT_TRUE(s.managed_save);

    auto refused = d->undefine_domain("test", {});
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("managed save image exists"), std::string::npos);

    ASSERT_TRUE(d->start_domain("test", {}));
    s = info(*d, "test");
    EXPECT_EQ(s.state, DomainState::Running);
    EXPECT_EQ(s.reason, "restored");
    EXPECT_FALSE(s.managed_save);

    ASSERT_TRUE(d->managed_save("test"));
    StartFlags fresh;
    fresh.force_boot = true;
    ASSERT_TRUE(d->start_domain("test", fresh));
    EXPECT_EQ(info(*d, "test").reason, "booted");

    ASSERT_TRUE(d->managed_save("test"));
    ASSERT_TRUE(d->managed_save_remove("test"));
    EXPECT_FALSE(info(*d, "test").managed_save);
    ASSERT_TRUE(d->start_domain("test", {}));
    EXPECT_EQ(info(*d, "test").reason, "booted");  // the image is gone
    ASSERT_TRUE(d->managed_save("test"));
    UndefineFlags with_image;
    with_image.managed_save = true;
    ASSERT_TRUE(d->undefine_domain("test", with_image));
    EXPECT_FALSE(d->lookup_domain("test"));

    EXPECT_EQ(log.take(), (std::vector<std::string>{
                              "Stopped/Saved test", "Started/Restored test", "Stopped/Saved test",
                              "Started/Booted test", "Stopped/Saved test", "Started/Booted test",
                              "Stopped/Saved test", "Undefined/Removed test"}));
}

TEST(TestDriver, AutostartFlag) {
    auto d = make_test_driver();
    EXPECT_FALSE(info(*d, "test").autostart);
    ASSERT_TRUE(d->set_autostart("test", true));
    EXPECT_TRUE(info(*d, "test").autostart);
    ASSERT_TRUE(d->set_autostart("test", false));
    EXPECT_FALSE(info(*d, "test").autostart);
}

TEST(TestDriver, MetadataTitleAndDescription) {
    auto d = make_test_driver();
    EXPECT_EQ(d->get_metadata("test", MetadataKind::Title, false).value_or("x"), "");
    // Running domain, neither live nor config: the live definition.
    ASSERT_TRUE(d->set_metadata("test", MetadataKind::Title, "Web server", false, false));
    EXPECT_EQ(d->get_metadata("test", MetadataKind::Title, false).value_or(""), "Web server");
    EXPECT_EQ(d->get_metadata("test", MetadataKind::Title, true).value_or("x"), "");
    EXPECT_EQ(info(*d, "test").title, "Web server");

    ASSERT_TRUE(d->set_metadata("test", MetadataKind::Description, "serves\nthings", true, true));
    EXPECT_EQ(d->get_metadata("test", MetadataKind::Description, true).value_or(""), "serves\nthings");
    auto xml = d->domain_xml("test", true);
    ASSERT_TRUE(xml);
    EXPECT_NE(xml->find("<description>"), std::string::npos);

    auto bad = d->set_metadata("test", MetadataKind::Title, "two\nlines", false, false);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::InvalidArg);

    ASSERT_TRUE(d->destroy_domain("test", {}));
    auto live_when_off = d->set_metadata("test", MetadataKind::Title, "t", true, false);
    ASSERT_FALSE(live_when_off);
    EXPECT_EQ(live_when_off.error().code, ErrorCode::InvalidState);
}

TEST(TestDriver, ConsoleEchoesLinesLikeAGuest) {
    auto d = make_test_driver();
    auto fd = d->open_console("test", "");
    ASSERT_TRUE(fd) << fd.error().message;
    const std::string msg = "hello\nworld\r\n";
    ASSERT_EQ(::send(fd->get(), msg.data(), msg.size(), MSG_NOSIGNAL), static_cast<ssize_t>(msg.size()));
    EXPECT_EQ(read_line(fd->get()), "test console: hello");
    EXPECT_EQ(read_line(fd->get()), "test console: world");

    auto by_name = d->open_console("test", "serial0");
    ASSERT_TRUE(by_name);
    auto unknown = d->open_console("test", "serial7");
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message.find("serial7"), std::string::npos);
    // Closing our end detaches; the driver outlives it cleanly, and a
    // driver destroyed with consoles open does not hang.
    fd->reset();
}

TEST(TestDriver, QueriesDoNotWaitBehindJobsAcrossThreads) {
    auto d = make_test_driver();
    // Many lifecycle operations in one thread while another lists: no
    // deadlock, every list sees a consistent state.
    std::atomic<bool> stop{false};
    std::thread lister([&] {
        while (!stop) {
            auto l = d->list_domains();
            ASSERT_TRUE(l);
            ASSERT_EQ(l->size(), 1u);
        }
    });
    for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(d->suspend_domain("test"));
        ASSERT_TRUE(d->resume_domain("test"));
    }
    stop = true;
    lister.join();
}
