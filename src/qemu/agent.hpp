// The QEMU guest agent (qemu-ga) protocol, from the host's side.
//
// The agent runs inside the guest and reads JSON commands from the
// virtio-serial port org.qemu.guest_agent.0; QEMU joins that port to a unix
// socket on the host (a <channel type='unix'> of the definition) on which it
// listens. Commands are QMP-like, {"execute": name, "arguments": {...}},
// answered with {"return": ...} or {"error": {"class", "desc"}}, one JSON
// object per line. Unlike QMP there is no greeting and no id: a reply that
// arrives after its command timed out would be taken for the next
// command's. guest-sync-delimited is the remedy the agent offers: before a
// command the client sends a random id, the agent answers with a 0xFF byte
// (the client drops everything before it) then {"return": id}; once that id
// came back, the next line answers the next command.
//
// Each call opens its own connection (connect, sync, command, close): a
// call never depends on the state a previous one left, a dead agent costs
// one timeout, and nothing reads the socket between calls. QEMU serves one
// client on the socket at a time; the driver serialises calls per domain.
//
// Commands with no reply (guest-shutdown, guest-suspend-*) succeed once
// written: the guest going away is their answer.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace vireo::qemu::agent {

// The name the agent's virtio-serial port has in the guest.
inline constexpr std::string_view kChannelName = "org.qemu.guest_agent.0";

// How long a command may take by default (libvirt's guest-agent-timeout
// default of "block" can hang a caller forever; vireo bounds every call).
inline constexpr std::chrono::milliseconds kDefaultTimeout{5000};

// Run `command` with `arguments` (null: none) on the agent listening at
// `socket`; its "return" value. `timeout` bounds the command; zero or
// negative means no bound. The sync before it is given at least
// kDefaultTimeout whatever `timeout` is (as libvirt's guest-sync): a sync
// cut short leaves the agent answering into a closed connection, and the
// next caller, however patient, would find it busy. An agent that does not
// answer the sync is "not connected" (ErrorCode::Timeout); an error reply
// is ErrorCode::OperationFailed with the agent's description (Unsupported for a
// command the agent does not have or has disabled).
Result<nlohmann::json> execute(const std::filesystem::path& socket, std::string_view command,
                               const nlohmann::json& arguments, std::chrono::milliseconds timeout);

// As execute(), for a command that is never answered: done once written.
Status send_no_reply(const std::filesystem::path& socket, std::string_view command, const nlohmann::json& arguments,
                     std::chrono::milliseconds timeout);

// virsh qemu-agent-command: `json` is a whole command as the user wrote it
// ({"execute": ..., "arguments": ...}); the agent's reply object as text
// ({"return": ...}). Malformed JSON or a missing "execute" is InvalidArg.
Result<std::string> execute_text(const std::filesystem::path& socket, std::string_view json,
                                 std::chrono::milliseconds timeout);

}  // namespace vireo::qemu::agent
