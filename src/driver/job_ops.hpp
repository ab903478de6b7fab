// The job operations of a connection (ops/job.hpp: job.list, job.abort),
// served from the one JobTracker its sub-drivers share: the QEMU driver's
// domain jobs and the PoolManager's volume jobs are listed together
// (daemon/driver_factory.cpp, testdrv/test_driver.cpp).
#pragma once

#include <memory>

#include "driver/driver.hpp"
#include "driver/job.hpp"

namespace vireo::driver {

void install_job_ops(Driver& connection, const std::shared_ptr<JobTracker>& jobs);

}  // namespace vireo::driver
