// --verbose of save, managedsave and restore: while the long call runs on
// the session's connection, a thread asks for the call's async job on a
// side connection (Session::side_conn) every half second and prints virsh's
// progress line on stderr ("\rSave: [ 45 %]"); a call that succeeded ends
// with "\rSave: [100 %]", as virsh's does. The caller then prints its
// message, which starts with "\n".
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "driver/driver.hpp"
#include "driver/job.hpp"

namespace vireo::cli {

class Session;

class JobWatch {
public:
    // How to find the job: its info, or a None/ended one while there is
    // none to report (not started yet, already over).
    using Query = std::function<Result<driver::JobInfo>(driver::Driver&)>;

    // Starts polling at once (the side connection is opened here, before
    // the long call, so that its start-up does not race the call).
    JobWatch(Session& session, std::string label, Query query);
    ~JobWatch();
    JobWatch(const JobWatch&) = delete;
    JobWatch& operator=(const JobWatch&) = delete;

    // The call returned: stop polling; on success print the 100 % line.
    void finish(bool succeeded);

    static constexpr std::chrono::milliseconds kInterval{500};

private:
    void run();

    std::string label_;
    Query query_;
    driver::Driver* side_ = nullptr;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

// The Query of a domain's job (domain.jobinfo).
JobWatch::Query domain_job_query(std::string domain);

// The Query of a job that does not exist yet and has no domain to ask
// about (restore): the first running job of `op` that was not running when
// the query was made (job.list).
JobWatch::Query new_job_query(driver::Driver& conn, driver::JobOperation op);

}  // namespace vireo::cli
