// Definitions identical to libvirt's. Each tests/unit/conf/libvirt/<case>.xml
// is a document written for these tests; <case>.libvirt.xml is what libvirt
// 9.0's `virsh -c qemu:///session define` + `dumpxml` printed for it on a
// Debian 12 host with QEMU 7.2 (so 'pc' is pc-i440fx-7.2 there). vireo's
// define (parse, the host part with that host's emulators and machine
// types, the defaults and addresses) must print the same document:
//   addr-*: PCI (i440fx, q35, root ports, bridges, multifunction), USB
//           (hubs), drive and virtio-serial addresses, controller order;
//   def-*:  the defaults libvirt fills in and prints.
// invalid/<case>.xml: refused; the first line <!-- expect: MESSAGE --> is the
// start of vireo's message (naming the field), the second line libvirt's.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "conf/domain.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::conf;
namespace fs = std::filesystem;

namespace {

fs::path golden_dir() { return test::source_dir() / "tests/unit/conf/libvirt"; }

std::vector<fs::path> documents(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.ends_with(".xml") && !name.ends_with(".libvirt.xml")) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string read_text(const fs::path& p) {
    auto text = files::read(p);
    EXPECT_TRUE(text) << p;
    return text ? *text : std::string();
}

// The host libvirt's goldens were made on: x86_64 and i686 emulators, QEMU
// 7.2's machine types.
DefineHost golden_host() {
    DefineHost host;
    host.emulator_for = [](std::string_view arch) -> std::string {
        if (arch == "x86_64") return "/usr/bin/qemu-system-x86_64";
        if (arch == "i686") return "/usr/bin/qemu-system-i386";
        return "";
    };
    host.canonical_machine = [](std::string_view, std::string_view machine) -> Result<std::string> {
        if (machine.empty() || machine == "pc") return std::string("pc-i440fx-7.2");
        if (machine == "q35") return std::string("pc-q35-7.2");
        return std::string(machine);
    };
    return host;
}

// vireo's define of a document: its inactive XML, or the error.
Result<std::string> define(const std::string& xml) {
    auto def = parse_domain_xml(xml);
    if (!def) return std::unexpected(def.error());
    VIREO_TRY(apply_define_host(*def, golden_host()));
    VIREO_TRY(assign_addresses_and_aliases(*def));
    return format_domain_xml(*def);
}

}  // namespace

TEST(LibvirtGolden, DefinitionsAreLibvirts) {
    const auto docs = documents(golden_dir());
    ASSERT_GE(docs.size(), 30u);
    for (const auto& doc : docs) {
        fs::path expected_file = doc;
        expected_file.replace_extension(".libvirt.xml");
        const std::string expected = read_text(expected_file);
        auto got = define(read_text(doc));
        ASSERT_TRUE(got) << doc << ": " << got.error().message;
        EXPECT_EQ(*got, expected) << doc.filename() << " differs from libvirt's " << expected_file.filename();
    }
}

// libvirt's output defines as libvirt defines it again: to itself, or, where
// libvirt's insertion order changes it (a controller or disk that went last
// because its type or bus was new, or had no index, moves next to its
// kind), to <case>.redefined.libvirt.xml, libvirt's second define; which
// then defines to itself.
TEST(LibvirtGolden, LibvirtsOutputDefinesAsInLibvirt) {
    for (const auto& doc : documents(golden_dir())) {
        fs::path out = doc;
        out.replace_extension(".libvirt.xml");
        fs::path again = doc;
        again.replace_extension(".redefined.libvirt.xml");
        for (const auto& [in, want] : {std::pair{out, fs::exists(again) ? again : out}, std::pair{again, again}}) {
            if (!fs::exists(in)) continue;
            const std::string expected = read_text(want);
            auto got = define(read_text(in));
            ASSERT_TRUE(got) << in << ": " << got.error().message;
            EXPECT_EQ(*got, expected) << in.filename() << " does not define to " << want.filename();
        }
    }
}

TEST(LibvirtGolden, InvalidDocumentsAreRefusedNamingTheField) {
    const auto docs = documents(golden_dir() / "invalid");
    ASSERT_GE(docs.size(), 15u);
    const std::regex expect_re("<!-- expect: (.*) -->");
    for (const auto& doc : docs) {
        const std::string text = read_text(doc);
        std::smatch m;
        ASSERT_TRUE(std::regex_search(text, m, expect_re)) << doc << " has no expect comment";
        auto got = define(text);
        ASSERT_FALSE(got) << doc.filename() << " was accepted:\n" << *got;
        EXPECT_EQ(got.error().message.substr(0, m[1].length()), m[1].str()) << doc.filename() << "\n  got: " << got.error().message;
        const bool unsupported = m[1].str().starts_with("unsupported configuration");
        EXPECT_EQ(got.error().code, unsupported ? ErrorCode::Unsupported : ErrorCode::XmlError) << doc.filename();
    }
}

// The same definitions with the host left out (the test driver, stored
// documents): libvirt's defaults except the machine's canonical name.
TEST(LibvirtGolden, DefaultsWithoutAHostKeepTheMachineAlias) {
    auto def = parse_domain_xml(read_text(golden_dir() / "addr-pc-usb-explicit.xml"));
    ASSERT_TRUE(def) << def.error().message;
    ASSERT_TRUE(assign_addresses_and_aliases(*def));
    EXPECT_EQ(def->os.machine, "pc");
    EXPECT_EQ(def->devices.emulator, "/usr/bin/qemu-system-x86_64");
}
