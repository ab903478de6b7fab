#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "driver/registry.hpp"

using namespace vireo;
using namespace vireo::driver;
using namespace std::chrono_literals;

namespace {

DomainDefinition def_of(const std::string& name, const Uuid& uuid) {
    conf::DomainDef d;
    d.name = name;
    d.uuid = uuid;
    d.memory_kib = 65536;
    return make_definition(std::move(d));
}

const Uuid kUuidA = *Uuid::parse("11111111-2222-3333-4444-555555555555");
const Uuid kUuidB = *Uuid::parse("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");

}  // namespace

TEST(Registry, ResolvesByNameThenUuidThenId) {
    DomainRegistry reg;
    auto web = reg.define(def_of("web", kUuidA));
    ASSERT_TRUE(web) << web.error().message;
    EXPECT_TRUE(web->created);
    // A domain literally named "1" must win over id 1 (name first, as virsh).
    auto one = reg.define(def_of("1", kUuidB));
    ASSERT_TRUE(one);
    const int id = reg.allocate_id();
    EXPECT_EQ(id, 1);
    web->object->with([&](DomainFields& f) { f.set_active(*f.config, id, DomainState::Running, "booted"); });

    EXPECT_EQ((*reg.resolve("web"))->name(), "web");
    EXPECT_EQ((*reg.resolve(kUuidA.str()))->name(), "web");
    EXPECT_EQ((*reg.resolve("11111111222233334444555555555555"))->name(), "web");
    EXPECT_EQ((*reg.resolve("1"))->name(), "1");

    web->object->with([&](DomainFields& f) { f.set_active(*f.config, 7, DomainState::Running, "booted"); });
    EXPECT_EQ((*reg.resolve("7"))->name(), "web");

    auto missing = reg.resolve("nosuch");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NoDomain);
    EXPECT_EQ(missing.error().message, "Domain not found: no domain with matching name 'nosuch'");
    // An inactive domain has no id to be found by.
    web->object->with([](DomainFields& f) { f.set_inactive("shutdown"); });
    EXPECT_FALSE(reg.resolve("7"));
}

TEST(Registry, ListIsSortedByName) {
    DomainRegistry reg;
    ASSERT_TRUE(reg.define(def_of("zeta", Uuid::generate())));
    ASSERT_TRUE(reg.define(def_of("alpha", Uuid::generate())));
    ASSERT_TRUE(reg.define(def_of("mid", Uuid::generate())));
    std::vector<std::string> names;
    for (const auto& s : reg.snapshots()) names.push_back(s.name);
    EXPECT_EQ(names, (std::vector<std::string>{"alpha", "mid", "zeta"}));
}

TEST(Registry, DuplicateNameOrUuidIsRefused) {
    DomainRegistry reg;
    ASSERT_TRUE(reg.define(def_of("web", kUuidA)));

    auto same_name = reg.define(def_of("web", kUuidB));
    ASSERT_FALSE(same_name);
    EXPECT_EQ(same_name.error().code, ErrorCode::Exists);
    EXPECT_EQ(same_name.error().message, "domain 'web' already exists with uuid " + kUuidA.str());

    auto same_uuid = reg.define(def_of("other", kUuidA));
    ASSERT_FALSE(same_uuid);
    EXPECT_EQ(same_uuid.error().code, ErrorCode::Exists);
    EXPECT_EQ(same_uuid.error().message, "domain 'web' is already defined with uuid " + kUuidA.str());

    auto again = reg.define(def_of("web", kUuidA));  // redefinition: fine
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->created);
    EXPECT_EQ(reg.size(), 1u);
}

TEST(Registry, RedefiningRunningDomainChangesOnlyNextBootDefinition) {
    DomainRegistry reg;
    auto first = def_of("web", kUuidA);
    auto added = reg.define(first);
    ASSERT_TRUE(added);
    const conf::DomainDef* running = nullptr;
    added->object->with([&](DomainFields& f) {
        f.set_active(*f.config, reg.allocate_id(), DomainState::Running, "booted");
        running = f.live->def.get();
    });

    conf::DomainDef changed = *first.def;
    changed.vcpus = 4;
    auto redefined = reg.define(make_definition(changed));
    ASSERT_TRUE(redefined);
    EXPECT_TRUE(redefined->was_active);
    auto snap = added->object->snapshot();
    EXPECT_EQ(snap.fields.live->def.get(), running);  // running instance untouched
    EXPECT_EQ(snap.fields.live->def->vcpus, first.def->vcpus);
    EXPECT_EQ(snap.fields.config->def->vcpus, 4u);   // next boot gets the new one
    EXPECT_EQ(snap.fields.current().def.get(), running);
}

TEST(Registry, UndefineInactiveRemovesRunningBecomesTransient) {
    DomainRegistry reg;
    auto a = reg.define(def_of("a", kUuidA));
    auto b = reg.define(def_of("b", kUuidB));
    ASSERT_TRUE(a && b);
    b->object->with([&](DomainFields& f) { f.set_active(*f.config, reg.allocate_id(), DomainState::Running, "booted"); });

    auto ua = reg.undefine(a->object, {});
    ASSERT_TRUE(ua);
    EXPECT_TRUE(ua->removed);
    EXPECT_TRUE(a->object->removed());
    EXPECT_FALSE(reg.find_by_name("a"));

    auto ub = reg.undefine(b->object, {});
    ASSERT_TRUE(ub);
    EXPECT_FALSE(ub->removed);
    auto snap = b->object->snapshot();
    EXPECT_FALSE(snap.fields.persistent());
    EXPECT_TRUE(snap.active());

    auto again = reg.undefine(b->object, {});
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::InvalidState);
    EXPECT_NE(again.error().message.find("cannot undefine transient domain"), std::string::npos);
}

TEST(Registry, UndefineRefusesManagedSaveUnlessAsked) {
    DomainRegistry reg;
    auto a = reg.define(def_of("a", kUuidA));
    ASSERT_TRUE(a);
    a->object->with([](DomainFields& f) { f.managed_save = true; });
    auto refused = reg.undefine(a->object, {});
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("managed save image exists"), std::string::npos);
    UndefineFlags flags;
    flags.managed_save = true;
    auto ok = reg.undefine(a->object, flags);
    ASSERT_TRUE(ok);
    EXPECT_TRUE(ok->had_managed_save);
    EXPECT_TRUE(ok->removed);
}

TEST(Registry, AddTransientRefusesActiveAndReusesInactivePersistent) {
    DomainRegistry reg;
    auto created = reg.add_transient(def_of("t", kUuidA));
    ASSERT_TRUE(created);
    EXPECT_TRUE(created->created);
    EXPECT_FALSE(created->object->snapshot().fields.persistent());
    created->object->with([&](DomainFields& f) { f.set_active(*f.live, reg.allocate_id(), DomainState::Running, "booted"); });
    auto dup = reg.add_transient(def_of("t", kUuidA));
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, ErrorCode::InvalidState);
    EXPECT_NE(dup.error().message.find("domain 't' is already active"), std::string::npos);

    ASSERT_TRUE(reg.define(def_of("p", kUuidB)));
    auto reuse = reg.add_transient(def_of("p", kUuidB));
    ASSERT_TRUE(reuse);
    EXPECT_FALSE(reuse->created);
    EXPECT_TRUE(reuse->object->snapshot().fields.persistent());
}

TEST(Registry, DomainIdsIncreaseFromOneAndCanBeContinued) {
    DomainRegistry reg;
    EXPECT_EQ(reg.allocate_id(), 1);
    EXPECT_EQ(reg.allocate_id(), 2);
    reg.set_next_id(40);
    EXPECT_EQ(reg.next_id(), 40);
    EXPECT_EQ(reg.allocate_id(), 40);
    DomainRegistry other;  // ids are per driver instance
    EXPECT_EQ(other.allocate_id(), 1);
}

TEST(Registry, RejectsNamesUnusableAsFileNames) {
    DomainRegistry reg;
    auto bad = reg.define(def_of("a/b", kUuidA));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::InvalidArg);
}

TEST(Jobs, BusyErrorNamesHolderWhileAnotherThreadHoldsTheJob) {
    DomainRegistry reg;
    auto obj = reg.define(def_of("web", kUuidA))->object;
    std::promise<void> taken, release;
    std::thread holder([&] {
        auto job = acquire_job(obj, "start");
        ASSERT_TRUE(job);
        taken.set_value();
        release.get_future().wait();
    });
    taken.get_future().wait();

    auto busy = acquire_job(obj, "destroy", 50ms);
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.error().code, ErrorCode::Busy);
    EXPECT_TRUE(is_retryable(busy.error().code));
    EXPECT_TRUE(busy.error().message.starts_with("cannot acquire state change lock (held by job 'start' for "))
        << busy.error().message;
    EXPECT_TRUE(busy.error().message.ends_with(" s)")) << busy.error().message;

    // Queries are not blocked while the job is held.
    auto snap = obj->snapshot();
    EXPECT_EQ(snap.job, "start");
    EXPECT_EQ(snap.name, "web");
    EXPECT_TRUE(reg.resolve("web"));
    EXPECT_EQ(reg.snapshots().size(), 1u);

    release.set_value();
    holder.join();
    auto next = acquire_job(obj, "destroy", 1s);
    ASSERT_TRUE(next);
    EXPECT_EQ(obj->current_job(), "destroy");
    next->release();
    EXPECT_EQ(obj->current_job(), std::nullopt);
}

TEST(Jobs, WaiterGetsTheJobWhenReleased) {
    DomainRegistry reg;
    auto obj = reg.define(def_of("web", kUuidA))->object;
    auto first = acquire_job(obj, "save");
    ASSERT_TRUE(first);
    auto waiter = std::async(std::launch::async, [&] { return acquire_job(obj, "start", 10s).has_value(); });
    std::this_thread::sleep_for(20ms);
    first->release();
    EXPECT_TRUE(waiter.get());
}

TEST(Jobs, RemovedDomainFailsWaitersWithNoDomain) {
    DomainRegistry reg;
    auto obj = reg.define(def_of("web", kUuidA))->object;
    auto first = acquire_job(obj, "undefine");
    ASSERT_TRUE(first);
    auto waiter = std::async(std::launch::async, [&] { return acquire_job(obj, "start", 10s); });
    std::this_thread::sleep_for(20ms);
    reg.remove(obj);
    auto r = waiter.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::NoDomain);
}

TEST(AsyncJobs, OnlyTheMaskedJobsRunDuringAnAsyncJob) {
    DomainRegistry reg;
    JobTracker tracker;
    auto obj = reg.define(def_of("web", kUuidA))->object;
    auto save = begin_async_job(obj, tracker, JobOperation::Save);
    ASSERT_TRUE(save);
    EXPECT_EQ(obj->current_job(), "save");
    ASSERT_NE(obj->async_job(), nullptr);
    EXPECT_EQ(obj->async_job()->operation(), JobOperation::Save);

    // destroy and abort may run beside it (default mask) ...
    auto destroy = acquire_job(obj, JobType::Destroy, "destroy", 50ms);
    ASSERT_TRUE(destroy) << destroy.error().message;
    destroy->release();
    auto abort = acquire_job(obj, JobType::Abort, "abort", 50ms);
    ASSERT_TRUE(abort);
    abort->release();
    // ... a modifying job and a second async job may not.
    auto start = acquire_job(obj, "start", 50ms);
    ASSERT_FALSE(start);
    EXPECT_EQ(start.error().code, ErrorCode::Busy);
    EXPECT_TRUE(start.error().message.starts_with("cannot acquire state change lock (held by async job 'save' for "))
        << start.error().message;
    auto second = begin_async_job(obj, tracker, JobOperation::Dump, kDefaultAsyncMask, 50ms);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, ErrorCode::Busy);

    save->job().set_data(10, 40);
    save->finish({});
    EXPECT_EQ(obj->async_job(), nullptr);
    ASSERT_TRUE(obj->completed_job());
    EXPECT_EQ(obj->completed_job()->status, JobStatus::Completed);
    EXPECT_EQ(obj->completed_job()->data_processed, 10u);
    EXPECT_TRUE(acquire_job(obj, "start", 50ms));
}

TEST(AsyncJobs, AnAsyncJobWaitsForTheSyncJobAndAWaiterForTheAsyncJob) {
    DomainRegistry reg;
    JobTracker tracker;
    auto obj = reg.define(def_of("web", kUuidA))->object;
    auto sync = acquire_job(obj, "define");
    ASSERT_TRUE(sync);
    auto save = std::async(std::launch::async, [&] { return begin_async_job(obj, tracker, JobOperation::Save); });
    std::this_thread::sleep_for(20ms);
    sync->release();
    auto guard = save.get();
    ASSERT_TRUE(guard);
    auto waiter = std::async(std::launch::async, [&] { return acquire_job(obj, "start", 10s).has_value(); });
    std::this_thread::sleep_for(20ms);
    guard->finish(std::unexpected(vireo::Error{ErrorCode::Io, "disk full"}));
    EXPECT_TRUE(waiter.get());
    EXPECT_EQ(obj->completed_job()->status, JobStatus::Failed);
    EXPECT_EQ(obj->completed_job()->error, "disk full");
}

TEST(AsyncJobs, ADroppedGuardEndsTheJobAsFailedAndAbortEndsItCancelled) {
    DomainRegistry reg;
    JobTracker tracker;
    auto obj = reg.define(def_of("web", kUuidA))->object;
    {
        auto job = begin_async_job(obj, tracker, JobOperation::Restore);
        ASSERT_TRUE(job);
    }
    EXPECT_EQ(obj->completed_job()->status, JobStatus::Failed);
    auto job = begin_async_job(obj, tracker, JobOperation::Save);
    ASSERT_TRUE(job);
    ASSERT_TRUE(obj->async_job()->request_abort());
    job->finish(std::unexpected(vireo::Error{ErrorCode::OperationFailed, "migration cancelled"}));
    EXPECT_EQ(obj->completed_job()->status, JobStatus::Cancelled);
}

// domjobinfo and domjobabort as every driver answers them.
TEST(DomainJobs, InfoIsTheRunningJobOrHowTheLastOneEnded) {
    DomainRegistry reg;
    JobTracker tracker;
    auto obj = reg.define(def_of("web", kUuidA))->object;
    auto off = domain_job_info(obj, false, false);
    ASSERT_FALSE(off);
    EXPECT_EQ(off.error().message, "Requested operation is not valid: domain is not running");
    EXPECT_EQ(domain_job_info(obj, true, false)->status, JobStatus::None);
    obj->with([](DomainFields& f) { f.set_active(*f.config, 1, DomainState::Running, "booted"); });
    EXPECT_EQ(domain_job_info(obj, false, false)->status, JobStatus::None);

    auto save = begin_async_job(obj, tracker, JobOperation::Save);
    ASSERT_TRUE(save);
    save->job().set_memory(10, 30, 40, 0);
    auto running = domain_job_info(obj, false, false);
    ASSERT_TRUE(running);
    EXPECT_EQ(running->status, JobStatus::Unbounded);
    EXPECT_EQ(running->mem_processed, 10u);
    save->finish({});
    EXPECT_EQ(domain_job_info(obj, false, false)->status, JobStatus::None);
    // --keep-completed reads the record and leaves it; without, it is read once.
    EXPECT_EQ(domain_job_info(obj, true, true)->status, JobStatus::Completed);
    EXPECT_EQ(domain_job_info(obj, true, false)->status, JobStatus::Completed);
    EXPECT_EQ(domain_job_info(obj, true, false)->status, JobStatus::None);
}

TEST(DomainJobs, AbortStopsTheAsyncJobAndNeverWaitsBehindIt) {
    DomainRegistry reg;
    JobTracker tracker;
    auto obj = reg.define(def_of("web", kUuidA))->object;
    auto off = abort_domain_job(obj);
    ASSERT_FALSE(off);
    EXPECT_EQ(off.error().message, "Requested operation is not valid: domain is not running");
    obj->with([](DomainFields& f) { f.set_active(*f.config, 1, DomainState::Running, "booted"); });
    auto none = abort_domain_job(obj);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, ErrorCode::InvalidState);
    EXPECT_EQ(none.error().message, "Requested operation is not valid: no job is active on the domain");

    auto save = begin_async_job(obj, tracker, JobOperation::Save);
    ASSERT_TRUE(save);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(abort_domain_job(obj));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_TRUE(save->job().abort_requested());
    save->finish(std::unexpected(job_aborted_error(JobOperation::Save)));
    auto done = domain_job_info(obj, true, true);
    EXPECT_EQ(done->status, JobStatus::Cancelled);
    EXPECT_EQ(done->error, "operation aborted: job 'domain save' canceled by client");
    EXPECT_FALSE(abort_domain_job(obj)) << "nothing runs any more";
}
