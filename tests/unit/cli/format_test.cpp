// The CLI's formatting helpers: virsh's table layout, the command-line
// tokenizer, the option parser, list filtering, dominfo/nodeinfo blocks.
#include <set>

#include <gtest/gtest.h>

#include "cli/vireo/app.hpp"
#include "cli/vireo/command.hpp"
#include "cli/vireo/commands.hpp"
#include "cli/vireo/format.hpp"
#include "driver/security_info.hpp"
#include "cli/vireo/text.hpp"

namespace vireo::cli {
namespace {

TEST(CliTable, LaysOutColumnsAsVirsh) {
    Table t({"Id", "Name", "State"});
    t.add_row({"1", "test", "running"});
    t.add_row({"-", "demo", "shut off"});
    EXPECT_EQ(t.render(),
              " Id   Name   State\n"
              "-----------------------\n"
              " 1    test   running\n"
              " -    demo   shut off\n");
}

TEST(CliTable, EmptyTableRuleCoversTheHeader) {
    Table t({"Id", "Name", "State"});
    EXPECT_EQ(t.render(), " Id   Name   State\n--------------------\n");
    EXPECT_EQ(t.render(false), "");
}

TEST(CliTable, LastColumnIsNotPaddedAndWidthCountsCharacters) {
    Table t({"Id", "Name", "State", "Title"});
    t.add_row({"1", "tést", "running", ""});
    EXPECT_EQ(t.render(), " Id   Name   State     Title\n------------------------------\n 1    tést   running   \n");
}

TEST(CliSplit, QuotesEscapesSeparatorsComments) {
    auto c = split_commands("start demo; desc demo 'two words' \"a \\\"q\\\"\" x\\ y # comment\nlist --all");
    ASSERT_TRUE(c);
    ASSERT_EQ(c->size(), 3u);
    EXPECT_EQ((*c)[0], (CommandWords{"start", "demo"}));
    EXPECT_EQ((*c)[1], (CommandWords{"desc", "demo", "two words", "a \"q\"", "x y"}));
    EXPECT_EQ((*c)[2], (CommandWords{"list", "--all"}));
}

TEST(CliSplit, UnterminatedQuoteIsAnError) { EXPECT_FALSE(split_commands("desc demo 'oops")); }

TEST(CliArgs, PositionalAndNamedInAnyOrder) {
    const CommandSpec* start = find_command("start");
    ASSERT_NE(start, nullptr);
    auto a = parse_args(*start, {"--paused", "demo"});
    ASSERT_TRUE(a);
    EXPECT_EQ(a->get("domain"), "demo");
    EXPECT_TRUE(a->has("paused"));
    auto b = parse_args(*start, {"--domain=demo"});
    ASSERT_TRUE(b);
    EXPECT_EQ(b->get("domain"), "demo");
}

TEST(CliArgs, ErrorsReadLikeVirsh) {
    const CommandSpec* start = find_command("start");
    ASSERT_NE(start, nullptr);
    EXPECT_EQ(parse_args(*start, {}).error().message, "command 'start' requires <domain> option");
    EXPECT_EQ(parse_args(*start, {"demo", "--bogus"}).error().message, "command 'start' doesn't support option --bogus");
    EXPECT_EQ(parse_args(*start, {"a", "b"}).error().message, "unexpected data 'b'");
    const CommandSpec* event = find_command("event");
    ASSERT_NE(event, nullptr);
    EXPECT_EQ(parse_args(*event, {"--timeout"}).error().message, "expected syntax: --timeout <number>");
    EXPECT_FALSE(parse_args(*event, {"--timeout", "soon"}));
}

TEST(CliArgs, ArgvOptionGathersTrailingWords) {
    const CommandSpec* desc = find_command("desc");
    ASSERT_NE(desc, nullptr);
    auto a = parse_args(*desc, {"demo", "a", "new", "text"});
    ASSERT_TRUE(a);
    EXPECT_EQ(a->get("domain"), "demo");
    EXPECT_EQ(a->rest, (std::vector<std::string>{"a", "new", "text"}));
}

// virsh takes an argv option by name too, once a word: domfsfreeze d --mountpoint /a --mountpoint /b.
TEST(CliArgs, ArgvOptionByNameRepeats) {
    const CommandSpec* freeze = find_command("domfsfreeze");
    ASSERT_NE(freeze, nullptr);
    auto a = parse_args(*freeze, {"demo", "--mountpoint", "/a", "--mountpoint=/b", "/c"});
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->get("domain"), "demo");
    EXPECT_EQ(a->rest, (std::vector<std::string>{"/a", "/b", "/c"}));
    EXPECT_EQ(parse_args(*freeze, {"demo", "--mountpoint"}).error().message, "expected syntax: --mountpoint <string>");
}

TEST(CliArgs, EveryVerbHasHelp) {
    for (const auto& spec : command_table()) {
        const std::string help = command_help(spec);
        EXPECT_NE(help.find(fmt::format("    {} - ", spec.name)), std::string::npos) << spec.name;
        EXPECT_NE(help.find("SYNOPSIS"), std::string::npos) << spec.name;
    }
}

// Each verb is registered once, and the verbs of every family are there
// (two files once defined the same add_*_commands function: the linker kept
// one and the iface-* verbs were lost without a compile error).
TEST(CliArgs, EveryVerbIsRegisteredOnce) {
    std::set<std::string_view> seen;
    for (const auto& spec : command_table()) EXPECT_TRUE(seen.insert(spec.name).second) << spec.name;
    for (std::string_view verb : {"domifstat", "iface-list", "net-list", "domjobinfo", "job-list", "pool-list"})
        EXPECT_NE(find_command(verb), nullptr) << verb;
}

driver::DomainSummary summary(std::string name, int id, driver::DomainState state) {
    driver::DomainSummary d;
    d.name = std::move(name);
    d.id = id;
    d.state = state;
    return d;
}

TEST(CliList, FiltersAndOrdersAsVirsh) {
    using driver::DomainState;
    std::vector<driver::DomainSummary> all{summary("zeta", -1, DomainState::Shutoff),
                                           summary("web", 3, DomainState::Paused),
                                           summary("alpha", -1, DomainState::Shutoff),
                                           summary("db", 1, DomainState::Running)};
    auto names = [](const std::vector<driver::DomainSummary>& v) {
        std::vector<std::string> out;
        for (const auto& d : v) out.push_back(d.name);
        return out;
    };
    EXPECT_EQ(names(select_domains(all, {})), (std::vector<std::string>{"db", "web"}));
    ListFilter every;
    every.inactive = true;
    EXPECT_EQ(names(select_domains(all, every)), (std::vector<std::string>{"db", "web", "alpha", "zeta"}));
    ListFilter paused = every;
    paused.state_paused = true;
    EXPECT_EQ(names(select_domains(all, paused)), (std::vector<std::string>{"web"}));
    ListFilter inactive;
    inactive.active = false;
    inactive.inactive = true;
    EXPECT_EQ(names(select_domains(all, inactive)), (std::vector<std::string>{"alpha", "zeta"}));
}

TEST(CliFormat, DominfoBlock) {
    auto d = summary("demo", -1, driver::DomainState::Shutoff);
    d.vcpus = 1;
    d.max_memory_kib = d.memory_kib = 262144;
    const std::string text = format_dominfo(d);
    EXPECT_TRUE(text.starts_with("Id:             -\nName:           demo\n"));
    EXPECT_NE(text.find("State:          shut off\n"), std::string::npos);
    EXPECT_EQ(text.find("CPU time:"), std::string::npos);  // not running
    EXPECT_NE(text.find("Max memory:     262144 KiB\n"), std::string::npos);
    EXPECT_NE(text.find("Autostart:      disable\n"), std::string::npos);
}

TEST(CliFormat, DominfoSecurityAsVirshPrintsIt) {
    auto d = summary("demo", 3, driver::DomainState::Running);
    EXPECT_NE(format_dominfo(d).find("Security model: none\nSecurity DOI:   0\n"), std::string::npos);
    EXPECT_EQ(format_dominfo(d).find("Security label"), std::string::npos);
    SecurityInfo dac{"dac", "0", "+65536:+65536"};
    EXPECT_NE(format_dominfo(d, dac).find("Security model: dac\nSecurity DOI:   0\nSecurity label: +65536:+65536 "
                                          "(enforcing)\n"),
              std::string::npos)
        << format_dominfo(d, dac);
    EXPECT_EQ(driver::secmodel_of_capabilities("<capabilities><host><secmodel>\n<model>dac</model>\n<doi>0</doi></secmodel>"),
              "dac");
    EXPECT_EQ(driver::secmodel_of_capabilities("<capabilities/>"), "none");
    EXPECT_EQ(driver::dac_label_of_domain("<domain><seclabel type='none' model='selinux'/><seclabel type='dynamic' "
                                  "model='dac' relabel='yes'>\n<label>+70000:+70000</label></seclabel></domain>"),
              "+70000:+70000");
    EXPECT_EQ(driver::dac_label_of_domain("<domain><seclabel type='dynamic' model='selinux'><label>x</label></seclabel>"), "");
}

TEST(CliFormat, NodeinfoBlock) {
    driver::NodeInfo n{"x86_64", 3145728, 8, 1400, 1, 2, 2, 2};
    EXPECT_EQ(format_nodeinfo(n),
              "CPU model:           x86_64\n"
              "CPU(s):              8\n"
              "CPU frequency:       1400 MHz\n"
              "CPU socket(s):       2\n"
              "Core(s) per socket:  2\n"
              "Thread(s) per core:  2\n"
              "NUMA cell(s):        1\n"
              "Memory size:         3145728 KiB\n");
}

TEST(CliFormat, EventLine) {
    driver::DomainEvent e;
    e.type = driver::EventType::Started;
    e.detail = "Booted";
    e.domain = "demo";
    e.when = std::chrono::system_clock::time_point{} + std::chrono::milliseconds(1700000000123);
    EXPECT_EQ(format_event(e, false), "event 'lifecycle' for domain 'demo': Started Booted");
    EXPECT_EQ(format_event(e, true), "2023-11-14 22:13:20.123+0000: event 'lifecycle' for domain 'demo': Started Booted");
    e.type = driver::EventType::MemoryDeviceSizeChange;
    e.detail = "virtiomem0";
    e.size_kib = 131072;
    EXPECT_EQ(format_event(e, false), "event 'memory-device-size-change' for domain 'demo': alias: virtiomem0 size: 131072");
}

TEST(CliComplete, VerbsOptionsAndGlobalOptions) {
    auto verbs = complete_words({"sta"});
    EXPECT_EQ(verbs, (std::vector<std::string>{"start"}));
    auto opts = complete_words({"start", "demo", "--pa"});
    EXPECT_EQ(opts, (std::vector<std::string>{"--paused"}));
    auto global = complete_words({"--rea"});
    EXPECT_EQ(global, (std::vector<std::string>{"--readonly"}));
    auto domains = complete_words({"-c", "test:///default", "dominfo", ""});
    EXPECT_EQ(domains, (std::vector<std::string>{"test"}));
}

}  // namespace
}  // namespace vireo::cli
