// The pool and volume operations of a connection (driver/ops/pool.hpp,
// volume.hpp), served by a PoolManager: what joins the storage sub-driver to
// a connection (the daemon's QEMU connection, the test:///default driver).
#pragma once

#include <functional>

#include "driver/driver.hpp"
#include "pool/pool_manager.hpp"
#include "util/error.hpp"

namespace vireo::pool {

// The manager serving a call: opened on first use by the test driver, or the
// error that says why the connection has no storage pools (then every pool
// and volume operation answers it).
using PoolManagerSource = std::function<Result<PoolManager*>()>;

// Install a handler for every pool and volume operation on `connection`.
// What `source` hands out must outlive the connection's calls (keep it in
// the connection with Driver::keep when nothing else owns it).
void install_pool_ops(driver::Driver& connection, const PoolManagerSource& source);

}  // namespace vireo::pool
