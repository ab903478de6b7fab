// The operation table: every operation of every family, in one type list.
// A new operation goes into its family's header (and its family's list);
// this file only changes when a new family appears.
#pragma once

#include <array>
#include <cstddef>

#include "driver/ops/domain.hpp"
#include "driver/ops/host.hpp"
#include "driver/ops/interface.hpp"
#include "driver/ops/job.hpp"
#include "driver/ops/network.hpp"
#include "driver/ops/op.hpp"
#include "driver/ops/pool.hpp"
#include "driver/ops/snapshot.hpp"
#include "driver/ops/volume.hpp"

namespace vireo::driver::ops {

using All = Concat<HostOps, JobOps, DomainOps, PoolOps, VolumeOps, NetworkOps, InterfaceOps, SnapshotOps>::type;

inline constexpr std::size_t kCount = All::size;

// The position of Op in All: its index in handler tables and routes.
template <class Op>
inline constexpr std::size_t index_of = IndexOf<Op, All>::value;

// Every operation's declaration, in table order.
inline constexpr std::array<const OpInfo*, kCount> kInfos = infos(All{});

// f.template operator()<Op>() for every operation / for the one at `index`.
template <class F>
constexpr void for_each_op(F&& f) {
    for_each(All{}, std::forward<F>(f));
}
template <class F>
void visit_op(std::size_t index, F&& f) {
    visit(All{}, index, std::forward<F>(f));
}

}  // namespace vireo::driver::ops
