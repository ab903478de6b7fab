#include <gtest/gtest.h>

#include <unistd.h>

#include "qemu/process.hpp"
#include "qemu/save_image.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;

TEST(SaveImage, HeaderRoundTripsAndAlignsTheStream) {
    qemu::SaveHeader h;
    h.xml = "<domain type='qemu'><name>x</name></domain>";
    h.was_running = false;
    h.compression = qemu::SaveCompression::Zstd;
    std::string bytes = qemu::encode_save_header(h);
    EXPECT_EQ(bytes.size(), h.data_offset);
    EXPECT_EQ(h.data_offset % 4096, 0u);
    auto back = qemu::decode_save_header(bytes);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->xml, h.xml);
    EXPECT_FALSE(back->was_running);
    EXPECT_EQ(back->compression, qemu::SaveCompression::Zstd);
    EXPECT_EQ(back->data_offset, h.data_offset);
}

TEST(SaveImage, RejectsForeignAndDamagedFiles) {
    EXPECT_EQ(qemu::decode_save_header("LibvirtQemudSave").error().code, ErrorCode::Corrupt);
    qemu::SaveHeader h;
    h.xml = "<domain/>";
    std::string bytes = qemu::encode_save_header(h);
    EXPECT_FALSE(qemu::decode_save_header(bytes.substr(0, 70)));
    bytes[16] = 9;  // version
    auto r = qemu::decode_save_header(bytes);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("version 9"), std::string::npos);
}

TEST(SaveImage, CompressionFieldIsChecked) {
    qemu::SaveHeader h;
    h.xml = "<domain/>";
    std::string bytes = qemu::encode_save_header(h);
    ASSERT_TRUE(qemu::decode_save_header(bytes));
    EXPECT_EQ(qemu::decode_save_header(bytes)->compression, qemu::SaveCompression::None) << "old images: raw";
    bytes[28] = 1;  // QEMU's own "compress" capability, no longer written or read
    auto legacy = qemu::decode_save_header(bytes);
    ASSERT_FALSE(legacy);
    EXPECT_NE(legacy.error().message.find("'compress' migration capability"), std::string::npos);
    bytes[28] = 7;
    auto unknown = qemu::decode_save_header(bytes);
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message.find("unknown compression 7"), std::string::npos);
}

TEST(SaveImage, FileIsPositionedAtTheStream) {
    test::TempDir tmp;
    qemu::SaveHeader h;
    h.xml = "<domain><name>y</name></domain>";
    auto fd = qemu::create_save_file(tmp / "s.save", h, false);
    ASSERT_TRUE(fd);
    ASSERT_EQ(::write(fd->get(), "STREAM", 6), 6);
    fd->reset();
    EXPECT_FALSE(qemu::create_save_file(tmp / "s.save", h, false)) << "must not overwrite without asking";
    auto opened = qemu::open_save_file(tmp / "s.save");
    ASSERT_TRUE(opened) << opened.error().full_message();
    char buf[6];
    ASSERT_EQ(::read(opened->second.get(), buf, 6), 6);
    EXPECT_EQ(std::string(buf, 6), "STREAM");
    EXPECT_EQ(opened->first.xml, h.xml);
}

TEST(Process, ShellJoinQuotesWhatNeedsIt) {
    EXPECT_EQ(qemu::shell_join({"/usr/bin/qemu", "-name", "guest=a b", "it's"}),
              "/usr/bin/qemu -name 'guest=a b' 'it'\\''s'");
}

TEST(Process, StartTimeIdentifiesALiveProcess) {
    auto st = qemu::process_start_time(::getpid());
    ASSERT_TRUE(st);
    EXPECT_TRUE(qemu::process_alive({::getpid(), *st}));
    EXPECT_FALSE(qemu::process_alive({::getpid(), *st + 1})) << "same pid, other start time: a reused pid";
    EXPECT_FALSE(qemu::process_start_time(-5));
}

TEST(Process, SpawnDetachedRunsInItsOwnSessionAndLogs) {
    test::TempDir tmp;
    qemu::SpawnSpec spec;
    spec.argv = {"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 30"};
    spec.log_path = tmp / "log";
    spec.pid_path = tmp / "pid";
    auto proc = qemu::spawn_detached(spec);
    ASSERT_TRUE(proc) << proc.error().message;
    EXPECT_TRUE(qemu::process_alive(*proc));
    EXPECT_NE(::getsid(proc->pid), ::getsid(0)) << "in a session of its own, not ours";
    EXPECT_NE(::getpgid(proc->pid), ::getpgid(0));
    EXPECT_EQ(*files::read(tmp / "pid"), std::to_string(proc->pid) + "\n");
    for (int i = 0; i < 100; ++i) {
        auto log = files::read(tmp / "log");
        if (log && log->find("to-stderr") != std::string::npos) break;
        ::usleep(20000);
    }
    auto log = files::read(tmp / "log");
    ASSERT_TRUE(log);
    EXPECT_NE(log->find("to-stdout"), std::string::npos);
    EXPECT_NE(log->find("to-stderr"), std::string::npos);
    EXPECT_TRUE(qemu::terminate_process(*proc, std::chrono::seconds(5), false));
    EXPECT_FALSE(qemu::process_alive(*proc));
}

TEST(Process, SpawnReportsAMissingProgram) {
    test::TempDir tmp;
    qemu::SpawnSpec spec;
    spec.argv = {"/nonexistent/qemu-system-x86_64"};
    spec.log_path = tmp / "log";
    auto proc = qemu::spawn_detached(spec);
    ASSERT_FALSE(proc);
    EXPECT_EQ(proc.error().code, ErrorCode::NotFound);
}
