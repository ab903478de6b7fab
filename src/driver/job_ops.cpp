#include "driver/job_ops.hpp"

namespace vireo::driver {

void install_job_ops(Driver& connection, const std::shared_ptr<JobTracker>& jobs) {
    connection.on<ops::JobList>([jobs](const ops::JobList::Request&) -> Result<std::vector<JobInfo>> {
        return jobs->list();
    });
    connection.on<ops::JobAbort>([jobs](const ops::JobAbort::Request& r) -> Status {
        auto id = parse_job_id(r.id);
        if (!id) return std::unexpected(id.error());
        return jobs->abort(*id);
    });
}

}  // namespace vireo::driver
