// The network driver's definitions without touching the host: define,
// redefine, undefine, autostart, net-dumpxml, update --config, refusals
// that leave nothing behind, NetworkPorts on missing and inactive
// networks, events, and what a second driver on the same directories
// loads. (Starting networks is in tests/integration/network, in network
// namespaces the tests create.)
#include <gtest/gtest.h>

#include <filesystem>

#include "netdrv/network_driver.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::netdrv;
namespace fs = std::filesystem;

namespace {

class NetworkDefinitions : public ::testing::Test {
protected:
    void SetUp() override { open(); }
    void open() {
        driver_.reset();
        NetworkDriverConfig c;
        c.confdir = dir_ / "network";
        c.rundir = dir_ / "run";
        c.state_dir = dir_ / "dnsmasq";
        c.clean_orphans = false;  // never touch the host's tables from a unit test
        auto d = NetworkDriver::open(c);
        ASSERT_TRUE(d) << d.error().full_message();
        driver_ = std::move(*d);
    }
    std::string error_of(const Status& st) { return st ? std::string("<success>") : st.error().full_message(); }
    template <class T>
    std::string error_of(const Result<T>& r) {
        return r ? std::string("<success>") : r.error().full_message();
    }

    test::TempDir dir_;
    std::unique_ptr<NetworkDriver> driver_;
};

constexpr std::string_view kLab = R"(<network>
  <name>lab</name>
  <uuid>0c5f35a5-275d-46f4-8098-0b11d72950e4</uuid>
  <forward mode='nat'/>
  <ip address='10.213.7.1' netmask='255.255.255.0'>
    <dhcp><range start='10.213.7.10' end='10.213.7.99'/></dhcp>
  </ip>
</network>)";

}  // namespace

TEST_F(NetworkDefinitions, DefineListDumpUndefine) {
    std::vector<std::string> events;
    auto sub = driver_->events().subscribe([&](const driver::NetworkEvent& e) {
        events.push_back(fmt::format("{}:{}", e.network, driver::network_event_name(e.type)));
    });
    auto n = driver_->define(kLab);
    ASSERT_TRUE(n) << n.error().full_message();
    EXPECT_EQ(n->name, "lab");
    EXPECT_FALSE(n->active);
    EXPECT_TRUE(n->persistent);
    EXPECT_FALSE(n->autostart);
    EXPECT_TRUE(n->bridge.starts_with("virbr")) << n->bridge;
    EXPECT_TRUE(fs::exists(dir_ / "network/lab.xml"));

    auto xml = driver_->xml("lab", false);
    ASSERT_TRUE(xml);
    EXPECT_NE(xml->find("<forward mode='nat'/>\n"), std::string::npos) << *xml;
    EXPECT_NE(xml->find(fmt::format("<bridge name='{}' stp='on' delay='0'/>", n->bridge)), std::string::npos) << *xml;
    EXPECT_NE(xml->find("<mac address='52:54:00:"), std::string::npos) << *xml;
    EXPECT_EQ(*driver_->xml("0c5f35a5-275d-46f4-8098-0b11d72950e4", true), *xml);  // by UUID

    // Redefining keeps the generated bridge and MAC when the document names them.
    ASSERT_TRUE(driver_->define(*xml));
    EXPECT_EQ(*driver_->xml("lab", false), *xml);

    auto list = driver_->list();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].name, "lab");

    ASSERT_TRUE(driver_->undefine("lab"));
    EXPECT_FALSE(fs::exists(dir_ / "network/lab.xml"));
    EXPECT_EQ(error_of(driver_->lookup("lab")), "Network not found: no network with matching name 'lab'");
    EXPECT_EQ(error_of(driver_->lookup("0c5f35a5-275d-46f4-8098-0b11d72950e4")),
              "Network not found: no network with matching uuid '0c5f35a5-275d-46f4-8098-0b11d72950e4'");
    EXPECT_EQ(events, (std::vector<std::string>{"lab:Defined", "lab:Defined", "lab:Undefined"}));
}

TEST_F(NetworkDefinitions, RefusalsChangeNothing) {
    ASSERT_TRUE(driver_->define(kLab));
    const auto before = files::read(dir_ / "network/lab.xml");
    // Same name, other uuid (a document without one gets a new uuid, as in libvirt).
    std::string again(kLab);
    again.erase(again.find("  <uuid>"), again.find("</uuid>") + 8 - again.find("  <uuid>"));
    EXPECT_EQ(error_of(driver_->define(again)),
              "operation failed: network 'lab' already exists with uuid 0c5f35a5-275d-46f4-8098-0b11d72950e4");
    // Same uuid, other name.
    std::string renamed(kLab);
    renamed.replace(renamed.find("lab"), 3, "lab2");
    EXPECT_EQ(error_of(driver_->define(renamed)),
              "operation failed: network 'lab' is already defined with uuid 0c5f35a5-275d-46f4-8098-0b11d72950e4");
    // An overlapping subnet and a bridge that is a host interface.
    EXPECT_NE(error_of(driver_->define("<network><name>other</name><ip address='10.213.7.129' prefix='25'/></network>"))
                  .find("overlaps"),
              std::string::npos);
    EXPECT_EQ(error_of(driver_->define("<network><name>lo2</name><bridge name='lo'/><ip address='10.1.2.1' prefix='24'/></network>")),
              "/network/bridge/@name: bridge name 'lo' is already in use by a host interface");
    EXPECT_EQ(*files::read(dir_ / "network/lab.xml"), *before);
    EXPECT_FALSE(fs::exists(dir_ / "network/other.xml"));
    EXPECT_FALSE(fs::exists(dir_ / "network/lo2.xml"));
    EXPECT_EQ(driver_->list()->size(), 1u);
    // A name that is not one file name.
    EXPECT_FALSE(driver_->define("<network><name>../x</name></network>"));
}

TEST_F(NetworkDefinitions, StateErrorsAreLibvirts) {
    ASSERT_TRUE(driver_->define(kLab));
    EXPECT_EQ(error_of(driver_->destroy("lab")), "Requested operation is not valid: network 'lab' is not active");
    EXPECT_EQ(error_of(driver_->update("lab", {.command = driver::NetworkUpdateCommand::AddLast,
                                               .section = driver::NetworkUpdateSection::IpDhcpHost,
                                               .xml = "<host mac='52:54:00:00:00:01' ip='10.213.7.5'/>",
                                               .live = true})),
              // libvirt's own words for --live on an inactive object (the one
              // --live/--config rule, driver/impact.hpp, says them for both).
              "Requested operation is not valid: network is not running");
    EXPECT_EQ(error_of(driver_->start("nosuch")), "Network not found: no network with matching name 'nosuch'");
    // The guests' side: a missing and an inactive network are refused by name.
    EXPECT_EQ(error_of(driver_->plug({.network = "nosuch", .domain = "vm", .mac = "52:54:00:00:00:01"})),
              "Network not found: no network with matching name 'nosuch'");
    EXPECT_EQ(error_of(driver_->plug({.network = "lab", .domain = "vm", .mac = "52:54:00:00:00:01"})),
              "Requested operation is not valid: network 'lab' is not active");
    EXPECT_TRUE(driver_->leases_for({"52:54:00:00:00:01"}).empty());
    auto leases = driver_->dhcp_leases("lab", "");
    ASSERT_TRUE(leases);
    EXPECT_TRUE(leases->empty());  // an inactive network has none, as libvirt answers
}

TEST_F(NetworkDefinitions, UpdateConfigOfAnInactiveNetworkIsStored) {
    ASSERT_TRUE(driver_->define(kLab));
    // --current on an inactive network is --config.
    ASSERT_TRUE(driver_->update("lab", {.command = driver::NetworkUpdateCommand::AddLast,
                                        .section = driver::NetworkUpdateSection::IpDhcpHost,
                                        .xml = "<host mac='52:54:00:00:00:01' name='g1' ip='10.213.7.5'/>"}));
    EXPECT_NE(files::read(dir_ / "network/lab.xml")->find("<host mac='52:54:00:00:00:01' name='g1' ip='10.213.7.5'/>"),
              std::string::npos);
    open();  // a second driver loads what the first stored
    auto xml = driver_->xml("lab", true);
    ASSERT_TRUE(xml) << xml.error().full_message();
    EXPECT_NE(xml->find("name='g1'"), std::string::npos);
}

TEST_F(NetworkDefinitions, AutostartIsALinkAndTransientNetworksHaveNone) {
    ASSERT_TRUE(driver_->define(kLab));
    ASSERT_TRUE(driver_->set_autostart("lab", true));
    EXPECT_TRUE(fs::is_symlink(dir_ / "network/autostart/lab.xml"));
    EXPECT_TRUE(driver_->lookup("lab")->autostart);
    ASSERT_TRUE(driver_->set_autostart("lab", false));
    EXPECT_FALSE(fs::exists(dir_ / "network/autostart/lab.xml"));
    EXPECT_EQ(error_of(driver_->set_autostart("nosuch", true)), "Network not found: no network with matching name 'nosuch'");
}

TEST_F(NetworkDefinitions, BadFilesAreSkippedAndLeftInPlace) {
    ASSERT_TRUE(files::write_atomic(dir_ / "network/broken.xml", "<network><name>broken"));
    ASSERT_TRUE(files::write_atomic(dir_ / "network/misnamed.xml", "<network><name>other</name></network>"));
    open();
    EXPECT_TRUE(driver_->list()->empty());
    EXPECT_TRUE(fs::exists(dir_ / "network/broken.xml"));
    EXPECT_TRUE(fs::exists(dir_ / "network/misnamed.xml"));
}

TEST_F(NetworkDefinitions, GeneratedBridgeNamesAvoidOtherNetworks) {
    ASSERT_TRUE(driver_->define("<network><name>a</name><ip address='10.71.0.1' prefix='24'/></network>"));
    ASSERT_TRUE(driver_->define("<network><name>b</name><ip address='10.72.0.1' prefix='24'/></network>"));
    auto a = driver_->lookup("a"), b = driver_->lookup("b");
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->bridge, b->bridge);
    EXPECT_EQ(error_of(driver_->define(fmt::format("<network><name>c</name><bridge name='{}'/></network>", a->bridge))),
              fmt::format("/network/bridge/@name: bridge name '{}' is already used by network 'a'", a->bridge));
}
