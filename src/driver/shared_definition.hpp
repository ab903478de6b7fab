// The two halves of a stored domain definition, shaped so that the daemon's
// memory and its queries do not grow with the size of each definition:
//
//   SharedXml     the canonical XML, immutable and shared: copying a
//                 DomainDefinition (every query snapshot does, for each
//                 domain a `list` shows) copies a pointer, not 1-2 KB.
//   DefinitionModel the parsed form (conf::DomainDef, ~6 KB with its
//                 vectors for a small guest). Either held (eager), or, for a
//                 stored persistent definition, rebuilt from the XML on first
//                 use and then kept (lazy): a daemon with 1000 defined domains
//                 keeps 1000 XML documents, not 1000 parsed models, and the
//                 few facts a list needs (DefinitionFacts) without parsing.
//
// Both behave like the std::string / std::shared_ptr<const conf::DomainDef>
// they replace for readers (conversions, ->, *, get(), comparison).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "conf/domain.hpp"
#include "util/uuid.hpp"

namespace vireo::driver {

// An immutable, shared string (an empty one when default-constructed).
class SharedXml {
public:
    SharedXml();
    SharedXml(std::string text);  // NOLINT(google-explicit-constructor): drop-in for std::string
    SharedXml& operator=(std::string text);

    [[nodiscard]] const std::string& str() const noexcept { return *text_; }
    operator const std::string&() const noexcept { return *text_; }  // NOLINT
    operator std::string_view() const noexcept { return *text_; }    // NOLINT

    [[nodiscard]] std::size_t size() const noexcept { return text_->size(); }
    [[nodiscard]] bool empty() const noexcept { return text_->empty(); }
    [[nodiscard]] const char* data() const noexcept { return text_->data(); }
    [[nodiscard]] const char* c_str() const noexcept { return text_->c_str(); }
    [[nodiscard]] std::string substr(std::size_t pos, std::size_t n = std::string::npos) const {
        return text_->substr(pos, n);
    }
    [[nodiscard]] std::size_t find(std::string_view what, std::size_t pos = 0) const noexcept {
        return text_->find(what, pos);
    }

    friend bool operator==(const SharedXml& a, const SharedXml& b) noexcept { return a.str() == b.str(); }
    friend bool operator==(const SharedXml& a, const std::string& b) noexcept { return a.str() == b; }
    friend bool operator==(const SharedXml& a, std::string_view b) noexcept { return a.str() == b; }
    friend bool operator==(const SharedXml& a, const char* b) noexcept { return a.str() == b; }

private:
    std::shared_ptr<const std::string> text_;
};

// What summaries (list, dominfo) need of a definition, kept beside a lazy
// model so that listing never parses.
struct DefinitionFacts {
    std::string name;
    Uuid uuid;
    std::string title;
    std::uint64_t max_memory_kib = 0;
    std::uint64_t memory_kib = 0;  // currentMemory, else memory
    unsigned vcpus = 0;            // current vCPUs, else the maximum
    std::string os_type;
    // The MACs of its <interface>s: a define that generates a MAC must avoid
    // every MAC of the connection, and reading them here keeps that from
    // parsing (and then keeping) every stored model.
    std::vector<std::string> macs;

    static DefinitionFacts of(const conf::DomainDef& def);
};

// The parsed model of a definition: held, or rebuilt once from its XML.
// Thread-safe: copies share the rebuilt model; the model is immutable.
class DefinitionModel {
public:
    DefinitionModel() = default;
    DefinitionModel(std::shared_ptr<const conf::DomainDef> def)  // NOLINT: drop-in for the shared_ptr
        : held_(std::move(def)) {}
    DefinitionModel& operator=(std::shared_ptr<const conf::DomainDef> def) {
        held_ = std::move(def);
        lazy_.reset();
        return *this;
    }

    // A model rebuilt from `xml` (canonical XML of `facts`' definition) on
    // first use.
    static DefinitionModel lazy(SharedXml xml, DefinitionFacts facts);

    // The model (parsed now if lazy and not yet parsed); nullptr when empty.
    [[nodiscard]] const conf::DomainDef* get() const;
    [[nodiscard]] const conf::DomainDef& operator*() const { return *get(); }
    [[nodiscard]] const conf::DomainDef* operator->() const { return get(); }
    explicit operator bool() const noexcept { return held_ || lazy_; }
    // As a shared pointer (parsed now if lazy); shares ownership.
    [[nodiscard]] std::shared_ptr<const conf::DomainDef> shared() const;
    operator std::shared_ptr<const conf::DomainDef>() const { return shared(); }  // NOLINT

    // Summary facts, without parsing a lazy model.
    [[nodiscard]] DefinitionFacts facts() const;
    // True when the model is rebuilt from the XML on first use.
    [[nodiscard]] bool is_lazy() const noexcept { return !held_ && lazy_; }
    // Owners of the held model (0 when lazy or empty).
    [[nodiscard]] long use_count() const noexcept { return held_.use_count(); }

private:
    struct Lazy {
        SharedXml xml;
        DefinitionFacts facts;
        std::once_flag once;
        std::shared_ptr<const conf::DomainDef> def;
    };
    std::shared_ptr<const conf::DomainDef> held_;
    std::shared_ptr<Lazy> lazy_;
};

}  // namespace vireo::driver

template <>
struct fmt::formatter<vireo::driver::SharedXml> : fmt::formatter<std::string_view> {
    template <class Ctx>
    auto format(const vireo::driver::SharedXml& x, Ctx& ctx) const {
        return fmt::formatter<std::string_view>::format(std::string_view(x.str()), ctx);
    }
};
